//! Durable writes: a write counts as done only once enough replicas have
//! it, checked with `WAIT` in the same round trip as the write.

use std::time::Duration;

use session_core::{Error, Result};

use super::error::RedisStoreError;

/// How many replicas must confirm a write, and how long to wait for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WaitReplicas {
    pub(super) replicas: u32,
    pub(super) timeout: Duration,
}

impl WaitReplicas {
    /// The `WAIT` command that follows a write in its pipeline.
    pub(super) fn command(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("WAIT");
        // WAIT's 0 means "forever": a timeout below 1 ms waits 1 ms.
        let millis = self.timeout.as_millis().clamp(1, u128::from(u64::MAX));
        cmd.arg(self.replicas).arg(millis as u64);
        cmd
    }

    /// The outcome of a write that Redis answered `reply` and `WAIT`
    /// `acked`: an error unless enough replicas confirmed it. A refused
    /// write (`0`) wrote nothing, so the replicas' count does not matter.
    pub(super) fn check(&self, op: &'static str, reply: i64, acked: i64) -> Result<i64> {
        if reply == 0 || acked >= i64::from(self.replicas) {
            return Ok(reply);
        }
        Err(Error::backend(RedisStoreError::NotReplicated {
            op,
            acked,
            wanted: self.replicas,
            timeout: self.timeout,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enough_replicas_or_an_error() {
        let wait = WaitReplicas {
            replicas: 2,
            timeout: Duration::from_millis(50),
        };
        assert_eq!(wait.check("save", 1, 2).unwrap(), 1);
        assert_eq!(wait.check("save", 1, 3).unwrap(), 1);
        assert_eq!(wait.check("save", 0, 0).unwrap(), 0);
        let err = wait.check("save", 1, 1).unwrap_err();
        assert!(matches!(err, Error::Backend(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("1 of 2 replicas") && text.contains("50ms"),
            "{text}"
        );
    }

    #[test]
    fn the_timeout_is_never_forever() {
        let wait = WaitReplicas {
            replicas: 1,
            timeout: Duration::ZERO,
        };
        let packed = String::from_utf8_lossy(&wait.command().get_packed_command()).into_owned();
        assert!(packed.ends_with("$1\r\n1\r\n$1\r\n1\r\n"), "{packed:?}");
    }
}
