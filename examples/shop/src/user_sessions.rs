//! The user's sessions, as the pages and the API both use them: listing
//! the signed-in devices and signing them out, through the session store's
//! per-user index (`Session::user_sessions` and friends). Log-in ties each
//! session to the account (`actions`); the cookie store keeps no index, so
//! there every call here answers [`AppError::NoUserSessions`].

use serde_json::{Value, json};
use session_core::{Session, SessionHandle, SessionInfo};

use crate::actions::require_user;
use crate::db::Repo;
use crate::error::AppError;
use crate::state::Shop;

/// Longest text taken for a handle before it is parsed.
const MAX_HANDLE_LEN: usize = 128;

/// `Err(NoUserSessions)` when the session store keeps no per-user index.
pub(crate) fn require_index<DB: Repo>(shop: &Shop<DB>) -> Result<(), AppError> {
    if shop.user_sessions {
        Ok(())
    } else {
        Err(AppError::NoUserSessions)
    }
}

/// The signed-in user's live sessions, this one flagged `current`, the
/// most recently seen first.
pub(crate) async fn list<DB: Repo>(
    shop: &Shop<DB>,
    session: &Session,
) -> Result<Vec<SessionInfo>, AppError> {
    require_index(shop)?;
    require_user(session).await?;
    let mut sessions = session.user_sessions().await?;
    sessions.sort_by_key(|s| std::cmp::Reverse(s.last_seen));
    Ok(sessions)
}

/// Signs out the user's session named `handle` (this one included, which
/// is then destroyed); `NotFound` when no live session of the user has it.
pub(crate) async fn revoke<DB: Repo>(
    shop: &Shop<DB>,
    session: &Session,
    handle: &str,
) -> Result<(), AppError> {
    require_index(shop)?;
    require_user(session).await?;
    let handle = parse_handle(handle)?;
    if session.revoke_session(&handle).await? {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// Signs out every other session of the user; returns how many.
pub(crate) async fn revoke_others<DB: Repo>(
    shop: &Shop<DB>,
    session: &Session,
) -> Result<usize, AppError> {
    require_index(shop)?;
    require_user(session).await?;
    Ok(session.revoke_other_sessions().await?)
}

fn parse_handle(text: &str) -> Result<SessionHandle, AppError> {
    if text.len() > MAX_HANDLE_LEN {
        return Err(AppError::BadHandle);
    }
    text.parse().map_err(|_| AppError::BadHandle)
}

/// Unix time in milliseconds, as the shop's JSON gives times.
pub(crate) fn unix_ms(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// One session as the JSON API answers it.
pub(crate) fn to_json(info: &SessionInfo) -> Value {
    json!({
        "handle": info.handle.to_string(),
        "created_at_ms": unix_ms(info.created_at),
        "last_seen_ms": unix_ms(info.last_seen),
        "user_agent": info.device.user_agent,
        "ip": info.device.ip,
        "current": info.current,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_handles_are_bad_requests() {
        for text in ["", "not a handle", &"x".repeat(MAX_HANDLE_LEN + 1)] {
            assert!(
                matches!(parse_handle(text), Err(AppError::BadHandle)),
                "{text:.20}"
            );
        }
    }

    #[test]
    fn times_are_unix_milliseconds() {
        let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(unix_ms(at), 1_700_000_000_000);
    }
}
