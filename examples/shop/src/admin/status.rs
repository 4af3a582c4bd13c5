//! `GET /status`: this instance's ID, the session store and its health,
//! each database server with its role, lag and ban state, and the caches'
//! hit ratios per tier.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use cache_aside::CacheStats;
use db_router::{DbRouter, RoutedDatabase};
use serde_json::{Value, json};

use crate::config::{Config, StoreKind};

/// This process's instance ID: random, made at first use.
pub(crate) fn instance_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let mut bytes = [0u8; 6];
        getrandom::fill(&mut bytes).expect("the OS random number generator");
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// Something `/status` reports on: the database router and the caches,
/// read when the page is asked for.
pub(crate) type StatusSource = Arc<dyn Fn() -> Value + Send + Sync>;

/// A cache's counters, read when `/status` is asked for.
pub(crate) type CacheSource = Box<dyn Fn() -> CacheStats + Send + Sync>;

/// What `/status` shows.
#[derive(Clone)]
pub(crate) struct Status {
    instance: Arc<str>,
    store: StoreKind,
    redis_url: Option<String>,
    database: StatusSource,
}

impl Status {
    /// The status of this instance (`instance` is its ID) under `config`;
    /// `database` reports the router and the caches.
    pub(crate) fn new(instance: &str, config: &Config, database: StatusSource) -> Self {
        Status {
            instance: instance.into(),
            store: config.session_store,
            redis_url: config
                .redis_cluster_urls
                .first()
                .cloned()
                .or_else(|| config.redis_url.clone()),
            database,
        }
    }

    /// The session store's kind and whether it answers now.
    async fn store(&self) -> Value {
        let (kind, health) = match self.store {
            StoreKind::Memory => ("memory", "ok".to_owned()),
            StoreKind::Cookie => ("cookie", "ok".to_owned()),
            StoreKind::Redis => ("redis", ping(self.redis_url.as_deref()).await),
            _ => ("dynamodb", "not probed".to_owned()),
        };
        json!({ "kind": kind, "health": health })
    }
}

/// `ok`, or why Redis at `url` does not answer a `PING` within a second.
async fn ping(url: Option<&str>) -> String {
    let Some(url) = url else {
        return "no URL".to_owned();
    };
    let answer = async {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(1), answer).await {
        Ok(Ok(_)) => "ok".to_owned(),
        Ok(Err(e)) => format!("down: {e}"),
        Err(_) => "down: no answer within 1 s".to_owned(),
    }
}

/// The page.
pub(super) async fn page(State(status): State<Status>) -> Json<Value> {
    let mut page = json!({
        "instance": &*status.instance,
        "session_store": status.store().await,
    });
    if let (Value::Object(page), Value::Object(more)) = (&mut page, (status.database)()) {
        page.extend(more);
    }
    Json(page)
}

/// The database servers behind `router` and the caches' hit ratios, for
/// `/status`.
pub(crate) fn database<DB: RoutedDatabase>(
    router: &DbRouter<DB>,
    caches: Vec<(&'static str, CacheSource)>,
) -> StatusSource {
    let router = router.clone();
    Arc::new(move || {
        let stats = router.stats();
        let mut servers = vec![json!({ "name": "primary", "role": "primary" })];
        servers.extend(stats.replicas.iter().map(|r| {
            json!({
                "name": r.name,
                "role": "replica",
                "banned": !r.healthy,
                "within_lag": r.within_lag,
                "lag_seconds": r.lag.map(|l| l.as_secs_f64()),
                "lag_bytes": r.lag_bytes,
                "bans": r.bans,
                "reads": r.reads,
            })
        }));
        let caches: serde_json::Map<String, Value> = caches
            .iter()
            .map(|(name, stats)| ((*name).to_owned(), hit_ratios(&stats())))
            .collect();
        json!({
            "database": servers,
            "fallbacks": stats.fallbacks.total(),
            "caches": caches,
        })
    })
}

/// Hits, misses and the hit ratio of each tier.
fn hit_ratios(stats: &CacheStats) -> Value {
    let tier = |hits: u64, misses: u64| {
        let total = hits + misses;
        json!({
            "hits": hits,
            "misses": misses,
            "hit_ratio": (total > 0).then(|| hits as f64 / total as f64),
        })
    };
    json!({
        "l1": tier(stats.l1_hits, stats.l1_misses),
        "l2": tier(stats.l2_hits, stats.l2_misses),
        "loads": stats.loads,
    })
}
