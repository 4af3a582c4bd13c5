//! Small edits of server URLs.

/// The `host:port` of `url` (no scheme, user or path).
pub fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

/// The database URL `base` with its database name replaced by `name`.
pub fn with_database(base: &str, name: &str) -> String {
    let (without_query, query) = base
        .split_once('?')
        .map_or((base, None), |(a, q)| (a, Some(q)));
    let (server, _) = without_query
        .rsplit_once('/')
        .filter(|(s, _)| s.contains("://") && s.len() > s.find("://").unwrap() + 3)
        .unwrap_or((without_query, ""));
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://u@h:1/stateful", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(
            with_database("mysql://root@h:3306/stateful?ssl-mode=disabled", "y"),
            "mysql://root@h:3306/y?ssl-mode=disabled"
        );
    }

    #[test]
    fn host_and_port() {
        assert_eq!(host_port("rediss://u:p@127.0.0.1:6390/0"), "127.0.0.1:6390");
        assert_eq!(host_port("http://127.0.0.1:8000"), "127.0.0.1:8000");
    }
}
