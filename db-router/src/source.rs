//! Where a read was served from, for apps that show or log it.

use std::fmt;

/// The server a read connection came from (see
/// [`DbRouter::reader_with_source`](crate::DbRouter::reader_with_source)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadSource {
    /// The primary: no replica configured or usable, or the read had to
    /// see a write the replicas do not have yet.
    Primary,
    /// The replica of this name (as in [`ReplicaStats::name`](crate::ReplicaStats::name)).
    Replica(String),
}

impl fmt::Display for ReadSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadSource::Primary => f.write_str("primary"),
            ReadSource::Replica(name) => write!(f, "replica {name}"),
        }
    }
}
