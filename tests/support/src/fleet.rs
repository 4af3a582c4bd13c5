//! Several shop processes behind one HAProxy.

use std::net::SocketAddr;

use crate::haproxy::{Balance, Haproxy};
use crate::shop::Shop;
use crate::tempdir::TempDir;

/// Several shop processes behind one HAProxy, sharing one database: the
/// `DATABASE_URL` of `env`, or else one SQLite file in a temporary
/// directory.
#[derive(Debug)]
pub struct Fleet {
    /// The instances, in HAProxy's order (`s0`, `s1`, …).
    pub shops: Vec<Shop>,
    /// The load balancer in front of them.
    pub lb: Haproxy,
    _data: Option<TempDir>,
}

impl Fleet {
    /// Starts `n` shop instances with `env`, one after the other (the
    /// first creates the database), then HAProxy.
    ///
    /// # Panics
    ///
    /// If a shop or HAProxy does not start.
    pub async fn start(n: usize, env: &[(&str, &str)], balance: Balance) -> Fleet {
        let data = (!env
            .iter()
            .any(|(k, _)| *k == "DATABASE_URL" || *k == "SHOP_DATA_DIR"))
        .then(|| TempDir::new("test-support-shop-data"));
        let dir = data
            .as_ref()
            .map(|d| d.path().to_string_lossy().into_owned());
        let mut env: Vec<(&str, &str)> = env.to_vec();
        if let Some(dir) = &dir {
            env.push(("SHOP_DATA_DIR", dir));
        }
        let mut shops = Vec::with_capacity(n);
        for _ in 0..n {
            shops.push(Shop::start(&env).await);
        }
        let addrs: Vec<SocketAddr> = shops.iter().map(|s| s.addr).collect();
        let lb = Haproxy::start(&addrs, balance).await;
        Fleet {
            shops,
            lb,
            _data: data,
        }
    }

    /// The load balancer's base URL.
    pub fn url(&self) -> String {
        self.lb.url()
    }
}
