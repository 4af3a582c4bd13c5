//! CSRF tokens: every HTML form carries the session's random token,
//! checked on `POST`.

use session_core::Session;

use crate::error::AppError;

/// Session key of the CSRF token.
pub(crate) const CSRF_KEY: &str = "csrf";

/// A fresh random token: 32 hex-encoded bytes from the OS.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random number generator");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The session's CSRF token, created on first use.
pub(crate) async fn csrf_token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session.get::<String>(CSRF_KEY).await? {
        return Ok(token);
    }
    // Atomic: two first page views at once agree on one token.
    Ok(session
        .update(CSRF_KEY, |token: Option<String>| {
            token.unwrap_or_else(random_token)
        })
        .await?)
}

/// Checks a submitted form's token against the session's.
pub(crate) async fn check_csrf(session: &Session, submitted: &str) -> Result<(), AppError> {
    match session.get::<String>(CSRF_KEY).await? {
        Some(token) if constant_time_eq(token.as_bytes(), submitted.as_bytes()) => Ok(()),
        _ => Err(AppError::Csrf),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(constant_time_eq(a.as_bytes(), a.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), b.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), &a.as_bytes()[..31]));
    }
}
