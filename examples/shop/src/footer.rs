//! The small footer of every page: which instance served it, the session
//! store, and where the page's data came from (the primary, a replica or
//! the cache), so that round-robin, failover and read-your-writes can be
//! watched from a browser. `SHOP_FOOTER=off` leaves it out.
//!
//! A layer puts a per-request record in a task-local; the loaders and the
//! reads of the handlers note their source in it ([`read_from`],
//! [`through_cache`]); the page layout renders it ([`render`]).

use std::cell::RefCell;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use maud::{Markup, html};

use crate::config::{Config, StoreKind};

/// What the footer of the pages says about this process: its instance
/// and session store. A front end other than the shop's router renders
/// it by running each request through [`serve`](Self::serve).
#[derive(Debug)]
pub struct Footer {
    instance: String,
    store: &'static str,
}

impl Footer {
    /// The footer of `config`'s instance, or `None` when it is turned off
    /// (`SHOP_FOOTER=off`).
    pub fn of(config: &Config) -> Option<Arc<Footer>> {
        if !config.footer {
            return None;
        }
        let store = match config.session_store {
            StoreKind::Memory => "memory",
            StoreKind::Cookie => "cookie",
            StoreKind::Redis if config.redis_cluster_urls.is_empty() => "redis",
            StoreKind::Redis => "redis cluster",
            StoreKind::DynamoDb => "dynamodb",
            StoreKind::Memcached => "memcached",
        };
        let instance = config
            .instance
            .clone()
            .unwrap_or_else(|| config.addr.to_string());
        Some(Arc::new(Footer { instance, store }))
    }
}

/// This request's footer and the sources of its data, in order.
#[derive(Debug)]
struct Served {
    footer: Arc<Footer>,
    sources: Vec<String>,
    loads: u64,
}

tokio::task_local! {
    static SERVED: RefCell<Served>;
}

impl Footer {
    /// Runs `handle`, the handling of one request, with its own record of
    /// where its data came from, so that a page it renders carries this
    /// footer.
    pub async fn serve<F: Future>(self: Arc<Self>, handle: F) -> F::Output {
        let served = RefCell::new(Served {
            footer: self,
            sources: Vec::new(),
            loads: 0,
        });
        SERVED.scope(served, handle).await
    }
}

/// The middleware that gives each request its record (install it only when
/// the footer is on).
pub(crate) async fn track(footer: Arc<Footer>, request: Request, next: Next) -> Response {
    footer.serve(next.run(request)).await
}

fn note(source: String, load: bool) {
    let _ = SERVED.try_with(|served| {
        let mut served = served.borrow_mut();
        if load {
            served.loads += 1;
        }
        if !served.sources.contains(&source) {
            served.sources.push(source);
        }
    });
}

/// Notes that a read of this request was served by `source` (the primary
/// or a named replica).
pub(crate) fn read_from(source: impl Display) {
    note(source.to_string(), true);
}

/// Runs `get`, a read through a cache; when no load ran while it did, the
/// answer came from the cache and that is noted.
pub(crate) async fn through_cache<T>(get: impl Future<Output = T>) -> T {
    let loads = || SERVED.try_with(|s| s.borrow().loads).unwrap_or(0);
    let before = loads();
    let out = get.await;
    if loads() == before {
        note("cache".to_owned(), false);
    }
    out
}

/// The footer of the current request's page; nothing when it is off.
pub(crate) fn render() -> Markup {
    SERVED
        .try_with(|served| {
            let served = served.borrow();
            let data = if served.sources.is_empty() {
                "none".to_owned()
            } else {
                served.sources.join(", ")
            };
            html! {
                footer id="served" {
                    "served by " span id="served-instance" { (served.footer.instance) }
                    " · sessions: " span id="served-store" { (served.footer.store) }
                    " · data: " span id="served-data" { (data) }
                }
            }
        })
        .unwrap_or_default()
}
