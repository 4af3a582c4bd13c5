//! Free loopback ports. A port is free when it was found; another process
//! may take it before the server that is given it binds, which on a test
//! machine is rare enough.

use std::net::TcpListener;

/// A free loopback port (bound, then released).
///
/// # Panics
///
/// If the system has none.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Whether nothing listens on loopback `port`.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A free loopback port whose neighbour `port + offset` is free too, as a
/// Redis Cluster node needs for its bus (`offset` 10000).
///
/// # Panics
///
/// If none is found in 500 tries.
pub fn free_port_with_neighbour(offset: u16) -> u16 {
    for _ in 0..500 {
        let port = free_port();
        if port
            .checked_add(offset)
            .is_some_and(|n| offset == 0 || port_is_free(n))
        {
            return port;
        }
    }
    panic!("no free loopback port with +{offset} free as well");
}

/// Two different free loopback ports.
pub fn free_port_pair() -> (u16, u16) {
    let first = free_port();
    let mut second = free_port();
    while second == first {
        second = free_port();
    }
    (first, second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free() {
        assert!(port_is_free(free_port()));
        let p = free_port_with_neighbour(10_000);
        assert!(port_is_free(p) && port_is_free(p + 10_000));
        let (a, b) = free_port_pair();
        assert_ne!(a, b);
    }
}
