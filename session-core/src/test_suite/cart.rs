//! The concurrency acceptance test: concurrent "add to cart" requests of
//! one session over several app instances, none of which may be lost.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use http::StatusCode;
use tokio::sync::Barrier;

use super::app::{inserting, send_concurrently};
use super::{FrontEnd, LastWriterWins, TestApp};
use crate::{SessionLayer, SessionStore};

/// What [`concurrent_cart_updates`] found in the cart afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CartOutcome {
    /// Items in the stored cart.
    pub items: usize,
    /// Distinct items among them.
    pub distinct: usize,
}

/// The concurrency acceptance test: `n` requests of one session, spread
/// round-robin over `layers` (one per app instance, each with its own store
/// connection), first all read the cart, then each adds its own item with
/// [`Session::update`](crate::Session::update). Without lost updates the cart ends with `n`
/// distinct items.
///
/// Each layer's attempt limit is raised to `n + 1`, which always suffices:
/// every failed attempt means another request's save succeeded.
///
/// # Errors
///
/// A request that failed, with its status and message.
pub async fn concurrent_cart_updates(
    layers: &[SessionLayer],
    n: usize,
) -> std::result::Result<CartOutcome, String> {
    cart_updates_through(FrontEnd::Tower, layers, n).await
}

/// [`concurrent_cart_updates`] with the requests sent through `front_end`.
pub(super) async fn cart_updates_through(
    front_end: FrontEnd,
    layers: &[SessionLayer],
    n: usize,
) -> std::result::Result<CartOutcome, String> {
    let barrier = Arc::new(Barrier::new(n));
    let attempts = u32::try_from(n + 1).unwrap_or(u32::MAX);
    let apps: Vec<TestApp> = layers
        .iter()
        .map(|layer| {
            let barrier = barrier.clone();
            TestApp::new(layer.clone(), move |s, i| {
                let barrier = barrier.clone();
                async move {
                    s.get::<Vec<usize>>("cart").await?;
                    barrier.wait().await;
                    let cart = s
                        .update("cart", |cart: Option<Vec<usize>>| {
                            let mut cart = cart.unwrap_or_default();
                            cart.push(i);
                            cart
                        })
                        .await?;
                    Ok(cart.len().to_string())
                }
            })
            .with_max_attempts(attempts)
            .with_front_end(front_end)
        })
        .collect();
    let first = apps.first().ok_or("no layer given")?;
    let cookie = inserting(front_end, first.layer.clone(), "cart", Vec::<usize>::new())
        .start_session()
        .await?;
    for res in send_concurrently(&apps, &cookie, n).await? {
        ensure!(
            res.status == StatusCode::OK,
            "an update failed with {}: {}",
            res.status,
            res.body
        );
    }
    let reader = TestApp::new(first.layer.clone(), |s, _| async move {
        let cart = s.get::<Vec<usize>>("cart").await?.unwrap_or_default();
        Ok(serde_json::to_string(&cart)?)
    })
    .with_front_end(front_end);
    let res = reader.send(Some(&cookie)).await;
    ensure!(
        res.status == StatusCode::OK,
        "reading the cart failed: {}",
        res.body
    );
    let cart: Vec<usize> = serde_json::from_str(&res.body).map_err(|e| e.to_string())?;
    let distinct: BTreeSet<usize> = cart.iter().copied().collect();
    Ok(CartOutcome {
        items: cart.len(),
        distinct: distinct.len(),
    })
}

/// The concurrency acceptance with its counter-proof: runs
/// [`concurrent_cart_updates`] with `n` requests over three stores from
/// `make_store` (each behind `layer(store)`) and asserts that every update
/// landed, then runs the same over the stores wrapped in [`LastWriterWins`]
/// and asserts that updates were lost there, which shows the check can
/// fail. Returns the items kept by the last-writer-wins run.
///
/// # Panics
///
/// If an update was lost, a request failed, or the last-writer-wins run
/// lost nothing.
pub async fn assert_no_lost_updates<F, Fut, S>(
    make_store: F,
    n: usize,
    layer: fn(Arc<dyn SessionStore>) -> SessionLayer,
) -> usize
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: SessionStore,
{
    let mut layers = Vec::new();
    let mut broken = Vec::new();
    for _ in 0..3 {
        layers.push(layer(Arc::new(make_store().await)));
        broken.push(layer(Arc::new(LastWriterWins(make_store().await))));
    }
    let started = tokio::time::Instant::now();
    let outcome = concurrent_cart_updates(&layers, n)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tracing::info!(n, took = ?started.elapsed(), "concurrent updates over 3 instances");
    assert_eq!(
        (outcome.items, outcome.distinct),
        (n, n),
        "{n} concurrent updates over 3 store instances lost updates"
    );
    let lww = concurrent_cart_updates(&broken, n)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        lww.distinct < n,
        "a last-writer-wins store kept all {n} items: the check cannot see lost updates"
    );
    lww.distinct
}
