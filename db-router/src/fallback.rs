//! Reads that go to the primary although replicas are configured: what
//! the router does when no replica can serve a read ([`ReadFallback`]),
//! and why it happened ([`FallbackReason`]).

use std::fmt;

/// What a read does when no replica is usable (all banned, all lagging, or
/// failing).
///
/// Reads that carry a causal token the replicas have not reached always go
/// to the primary: read-your-writes is not optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadFallback {
    /// Read from the primary (through its read-only pool) and count the
    /// fallback.
    #[default]
    Primary,
    /// Fail with [`Error::NoReplicaAvailable`](crate::Error::NoReplicaAvailable),
    /// to protect the primary.
    Fail,
}

/// Why a read went to the primary although replicas are configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FallbackReason {
    /// Every replica is banned after a failed health probe or connection.
    ReplicasUnhealthy,
    /// Every healthy replica is over the configured lag limit.
    ReplicasLagging,
    /// The replicas that were tried failed while serving this read, or
    /// their pools were exhausted.
    ReplicaError,
    /// The read carried a causal token whose position no usable replica had
    /// replayed (within the configured wait).
    TokenNotReached,
    /// The read carried a token without a position (SQLite, MySQL without
    /// GTID) and the write is too recent for the replicas.
    RecentWrite,
    /// The token carrier failed, so it is unknown whether the user wrote
    /// recently; the primary is the safe choice.
    TokenUnavailable,
}

impl FallbackReason {
    /// Every reason, in a fixed order.
    pub const ALL: [FallbackReason; 6] = [
        FallbackReason::ReplicasUnhealthy,
        FallbackReason::ReplicasLagging,
        FallbackReason::ReplicaError,
        FallbackReason::TokenNotReached,
        FallbackReason::RecentWrite,
        FallbackReason::TokenUnavailable,
    ];

    /// A short `snake_case` name, for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::ReplicasUnhealthy => "replicas_unhealthy",
            FallbackReason::ReplicasLagging => "replicas_lagging",
            FallbackReason::ReplicaError => "replica_error",
            FallbackReason::TokenNotReached => "token_not_reached",
            FallbackReason::RecentWrite => "recent_write",
            FallbackReason::TokenUnavailable => "token_unavailable",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            FallbackReason::ReplicasUnhealthy => 0,
            FallbackReason::ReplicasLagging => 1,
            FallbackReason::ReplicaError => 2,
            FallbackReason::TokenNotReached => 3,
            FallbackReason::RecentWrite => 4,
            FallbackReason::TokenUnavailable => 5,
        }
    }
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
