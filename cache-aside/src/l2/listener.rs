//! Follows the invalidation channel, so that every instance drops what
//! another one invalidated from its L1.

use std::future::Future;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;

use super::L2;

/// How often the invalidation subscription is pinged to detect a dead link.
const SUBSCRIPTION_PING: Duration = Duration::from_secs(1);

/// What the invalidation listener drives.
pub(crate) trait Listener: Send + Sync + 'static {
    /// Key type.
    type Key;
    /// Value type.
    type Value;
    /// The L2 whose channel to follow.
    fn l2(&self) -> &L2<Self::Key, Self::Value>;
    /// The subscription is (re)established: messages may have been missed.
    fn on_subscribed(&self);
    /// An invalidation message arrived.
    fn on_message(&self, payload: &[u8]) -> impl Future<Output = ()> + Send;
}

/// Follows the invalidation channel for as long as `target` lives,
/// reconnecting with backoff and detecting a silent link with pings.
pub(crate) async fn listen<T: Listener>(target: Weak<T>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(this) = target.upgrade() else { return };
        let l2 = this.l2();
        let (channel, settings, name) = (l2.channel.clone(), l2.settings.clone(), l2.name.clone());
        // Through Sentinel this asks for the master, within the connect
        // timeout.
        let client = l2.subscription_client().await;
        drop(this);

        let connected = async {
            let mut pubsub = client?.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = match tokio::time::timeout(settings.connect_timeout, connected).await {
            Ok(Ok(pubsub)) => Some(pubsub),
            Ok(Err(error)) => {
                tracing::debug!(cache = %name, %error, "invalidation subscription failed");
                None
            }
            Err(_) => {
                tracing::debug!(cache = %name, "invalidation subscription timed out");
                None
            }
        };

        if let Some(pubsub) = pubsub {
            backoff = Duration::from_millis(50);
            let Some(this) = target.upgrade() else { return };
            this.l2().subscribed.store(true, Ordering::Relaxed);
            this.on_subscribed();
            drop(this);
            tracing::debug!(cache = %name, "invalidation subscription established");

            let (mut sink, mut stream) = pubsub.split();
            let mut ping = tokio::time::interval(SUBSCRIPTION_PING);
            ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ping.tick().await;
            loop {
                tokio::select! {
                    message = stream.next() => {
                        let Some(message) = message else { break };
                        let Some(this) = target.upgrade() else { return };
                        this.on_message(message.get_payload_bytes()).await;
                    }
                    _ = ping.tick() => {
                        let pong = tokio::time::timeout(settings.op_timeout, sink.ping::<redis::Value>()).await;
                        if !matches!(pong, Ok(Ok(_))) {
                            break;
                        }
                    }
                }
            }
            let Some(this) = target.upgrade() else { return };
            this.l2().subscribed.store(false, Ordering::Relaxed);
            drop(this);
            tracing::warn!(cache = %name, "invalidation subscription lost; reconnecting");
        }

        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}
