//! A DNS name that fails over, played on loopback: a TCP relay on a port of
//! its own that forwards each new connection to the port it currently
//! points at, the way ElastiCache's primary endpoint is pointed at the
//! promoted replica. Connections opened before a switch stay on the old
//! server, as connections to the old address do after a DNS change.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A relay on `127.0.0.1:port` to a switchable target; stops accepting
/// when dropped (relayed connections end when either side closes).
#[derive(Debug)]
pub struct Endpoint {
    /// The port clients connect to.
    pub port: u16,
    target: Arc<AtomicU16>,
    accept: JoinHandle<()>,
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
        let target = Arc::new(AtomicU16::new(target));
        let to = Arc::clone(&target);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let port = to.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(("127.0.0.1", port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Endpoint {
            port,
            target,
            accept,
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends new connections to loopback `target` from now on.
    pub fn point_to(&self, target: u16) {
        self.target.store(target, Ordering::SeqCst);
    }

    /// The port new connections go to.
    pub fn target(&self) -> u16 {
        self.target.load(Ordering::SeqCst)
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
}
