//! A DNS name that fails over, played on loopback: a TCP relay on a port of
//! its own that forwards each new connection to the port it currently
//! points at, the way ElastiCache's primary endpoint is pointed at the
//! promoted replica. Connections opened before a switch stay on the old
//! server, as connections to the old address do after a DNS change.

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A relay on `127.0.0.1:port` to a switchable target; stops accepting
/// when dropped (relayed connections end when either side closes).
#[derive(Debug)]
pub struct Endpoint {
    /// The port clients connect to.
    pub port: u16,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

/// What the relay's tasks share.
#[derive(Debug)]
struct State {
    target: AtomicU16,
    /// Whether the relay plays a network partition.
    cut: AtomicBool,
    /// The relayed connections' tasks.
    relays: Mutex<Vec<JoinHandle<()>>>,
}

impl Endpoint {
    /// Starts relaying a free port to loopback `target`.
    ///
    /// # Panics
    ///
    /// If no port can be bound.
    pub async fn start(target: u16) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the endpoint's port");
        let port = listener.local_addr().expect("its address").port();
        let state = Arc::new(State {
            target: AtomicU16::new(target),
            cut: AtomicBool::new(false),
            relays: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if shared.cut.load(Ordering::SeqCst) {
                    continue;
                }
                let port = shared.target.load(Ordering::SeqCst);
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(("127.0.0.1", port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                let mut relays = shared.relays.lock().expect("the relays");
                relays.retain(|r| !r.is_finished());
                relays.push(relay);
            }
        });
        Endpoint {
            port,
            state,
            accept,
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends new connections to loopback `target` from now on.
    pub fn point_to(&self, target: u16) {
        self.state.target.store(target, Ordering::SeqCst);
    }

    /// The port new connections go to.
    pub fn target(&self) -> u16 {
        self.state.target.load(Ordering::SeqCst)
    }

    /// Plays a network partition between the clients and the target:
    /// every relayed connection is cut at once, and what was in flight on
    /// it never arrives; new connections are closed as soon as they are
    /// accepted, until [`heal`](Self::heal).
    pub fn partition(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        for relay in self.state.relays.lock().expect("the relays").drain(..) {
            relay.abort();
        }
    }

    /// Ends a [`partition`](Self::partition): new connections are relayed
    /// again.
    pub fn heal(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo_server(reply: u8) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 1];
                    while s.read_exact(&mut b).await.is_ok() {
                        if s.write_all(&[reply]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }

    async fn ask(s: &mut TcpStream) -> u8 {
        s.write_all(b"?").await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        b[0]
    }

    #[tokio::test]
    async fn new_connections_follow_the_switch_old_ones_stay() {
        let (a, b) = (echo_server(b'a').await, echo_server(b'b').await);
        let endpoint = Endpoint::start(a).await;
        let mut old = TcpStream::connect(("127.0.0.1", endpoint.port))
            .await
            .unwrap();
        assert_eq!(ask(&mut old).await, b'a');
        endpoint.point_to(b);
        assert_eq!(endpoint.target(), b);
        let mut new = TcpStream::connect(("127.0.0.1", endpoint.port))
            .await
            .unwrap();
        assert_eq!(ask(&mut new).await, b'b');
        assert_eq!(ask(&mut old).await, b'a');
    }

    /// Whether a connection through the endpoint is answered.
    async fn answered(s: &mut TcpStream) -> bool {
        let mut b = [0u8; 1];
        s.write_all(b"?").await.is_ok() && matches!(s.read(&mut b).await, Ok(1))
    }

    #[tokio::test]
    async fn a_partition_cuts_every_connection_until_healed() {
        let endpoint = Endpoint::start(echo_server(b'a').await).await;
        let connect = || TcpStream::connect(("127.0.0.1", endpoint.port));
        let mut old = connect().await.unwrap();
        assert!(answered(&mut old).await);
        endpoint.partition();
        assert!(!answered(&mut old).await, "a connection outlived the cut");
        let mut during = connect().await.unwrap();
        assert!(!answered(&mut during).await, "a new connection got through");
        endpoint.heal();
        let mut after = connect().await.unwrap();
        assert!(answered(&mut after).await);
    }
}
