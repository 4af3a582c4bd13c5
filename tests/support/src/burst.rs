//! Many tasks released at once, as a burst of requests arrives.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Barrier;

/// Spawns `n` tasks, the `i`-th running `make(i)`, releases them together
/// on one barrier and waits for all of them: their outputs in order, and
/// the time from the release until the last one finished.
///
/// # Panics
///
/// If a task panics.
pub async fn burst<F, Fut, T>(n: usize, make: F) -> (Vec<T>, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n + 1));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let work = make(i);
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    barrier.wait().await;
    let released = Instant::now();
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.push(task.await.expect("a burst task panicked"));
    }
    (out, released.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_task_runs_and_answers_in_order() {
        let (out, _) = burst(50, |i| async move { i * 2 }).await;
        assert_eq!(out, (0..50).map(|i| i * 2).collect::<Vec<_>>());
    }
}
