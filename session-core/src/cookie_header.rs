//! The session cookie on the wire: finding it among a request's `Cookie`
//! headers and writing the response's `Set-Cookie` header.

use std::time::Duration;

use crate::config::{Config, SameSite};

/// What the response must do with the session cookie.
#[derive(Debug)]
pub(crate) enum CookieAction {
    /// Set it to `value`, for `max_age` (`None`: a browser-session cookie).
    Set {
        value: String,
        max_age: Option<Duration>,
    },
    /// Remove it.
    Remove,
}

/// The cookie values of an `http` request's `Cookie` headers; headers that
/// are not UTF-8 are skipped.
pub(crate) fn header_values(headers: &http::HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
}

/// The first value among the cookies named `name` in the `Cookie` header
/// values `headers` that `accept` takes. Cookies that do not parse are
/// skipped.
pub(crate) fn find<'h, T>(
    headers: impl IntoIterator<Item = &'h str>,
    name: &str,
    mut accept: impl FnMut(&str) -> Option<T>,
) -> Option<T> {
    headers
        .into_iter()
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == name)
        .find_map(|c| accept(c.value()))
}

/// The `Set-Cookie` header value that carries out `action` under the
/// layer's cookie settings.
pub(crate) fn set_cookie(config: &Config, action: CookieAction) -> String {
    let settings = &config.cookie;
    let (value, max_age) = match action {
        CookieAction::Set { value, max_age } => (value, max_age),
        CookieAction::Remove => (String::new(), Some(Duration::ZERO)),
    };
    let mut c = cookie::Cookie::build((settings.name.clone(), value))
        .path(settings.path.clone())
        .secure(settings.secure)
        .http_only(settings.http_only)
        .same_site(match settings.same_site {
            SameSite::Strict => cookie::SameSite::Strict,
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::None => cookie::SameSite::None,
        });
    if let Some(domain) = &settings.domain {
        c = c.domain(domain.clone());
    }
    if let Some(age) = max_age {
        let secs = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
        c = c.max_age(time::Duration::seconds(secs));
    }
    c.build().to_string()
}

#[cfg(test)]
mod tests {
    use http::header::COOKIE;
    use http::{HeaderMap, HeaderValue};

    use super::*;
    use crate::Id;

    #[test]
    fn finds_the_first_valid_cookie() {
        let id = Id::random();
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("other=1; id=garbage"));
        headers.append(COOKIE, HeaderValue::from_bytes(b"id=\xff\xfe").unwrap());
        headers.append(
            COOKIE,
            HeaderValue::from_str(&format!("x=2; id={id}")).unwrap(),
        );
        let first_id = |headers: &HeaderMap, name| find(header_values(headers), name, Id::parse);
        assert_eq!(first_id(&headers, "id"), Some(id.clone()));
        assert_eq!(first_id(&headers, "sid"), None);
        assert_eq!(first_id(&HeaderMap::new(), "id"), None);
    }

    #[test]
    fn cookie_attributes_follow_the_config() {
        let mut config = Config::default();
        let id = Id::random();
        let v = set_cookie(
            &config,
            CookieAction::Set {
                value: id.to_string(),
                max_age: None,
            },
        );
        assert!(v.starts_with(&format!("id={id}")), "{v}");
        for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
            assert!(v.contains(attr), "{attr} missing in {v}");
        }
        assert!(!v.contains("Max-Age"), "{v}");

        config.cookie.secure = false;
        config.cookie.http_only = false;
        config.cookie.same_site = SameSite::Strict;
        config.cookie.domain = Some("example.com".into());
        config.cookie.name = "sid".into();
        let v = set_cookie(
            &config,
            CookieAction::Set {
                value: id.to_string(),
                max_age: Some(Duration::from_secs(60)),
            },
        );
        assert!(v.starts_with("sid="), "{v}");
        assert!(!v.contains("HttpOnly") && !v.contains("Secure"), "{v}");
        assert!(
            v.contains("SameSite=Strict") && v.contains("Domain=example.com"),
            "{v}"
        );
        assert!(v.contains("Max-Age=60"), "{v}");

        let v = set_cookie(&config, CookieAction::Remove);
        assert!(v.contains("Max-Age=0"));
    }
}
