//! The Lua scripts that do every write, each one atomic on the server, and
//! how they are run and answered.
//!
//! The sources are in `lua/`: `helpers.lua` is prepended to each script.

use redis::{ErrorKind, RedisResult, ServerErrorKind};
use session_core::store::unix_millis;
use session_core::{Error, Result};
use time::OffsetDateTime;

use super::connection::Conn;
use super::durable::WaitReplicas;
use super::error::RedisStoreError;

/// One script: its name (for logs), its source, and its hash.
pub(super) struct Lua {
    name: &'static str,
    source: &'static str,
    script: redis::Script,
}

impl Lua {
    fn new(name: &'static str, source: &'static str) -> Self {
        Lua {
            name,
            source,
            script: redis::Script::new(source),
        }
    }

    /// Runs the script on `key` with `args`: `EVALSHA`, and `EVAL` with
    /// the source if the server does not have it cached (which also caches
    /// it there, e.g. after a restart or failover).
    ///
    /// With `wait`, a `WAIT` follows the script in the same pipeline, and
    /// its answer (how many replicas have the write) comes second.
    pub(super) async fn run(
        &self,
        conn: &Conn,
        key: &str,
        args: &[&[u8]],
        wait: Option<WaitReplicas>,
    ) -> RedisResult<(i64, Option<i64>)> {
        let with = |verb: &str, first: &[u8]| {
            // Sized up front: the session's data is the bulk of it.
            let bytes = verb.len() + first.len() + 1 + key.len();
            let mut cmd = redis::Cmd::with_capacity(
                4 + args.len(),
                bytes + args.iter().map(|a| a.len()).sum::<usize>(),
            );
            cmd.arg(verb).arg(first).arg(1).arg(key);
            for a in args {
                cmd.arg(*a);
            }
            cmd
        };
        let send = |cmd: redis::Cmd| async move {
            match wait {
                None => conn.query(&cmd).await.map(|reply| (reply, None)),
                Some(wait) => {
                    let mut pipe = redis::pipe();
                    pipe.add_command(cmd).add_command(wait.command());
                    let (reply, acked): (i64, i64) = conn.query_pipe(&pipe).await?;
                    Ok((reply, Some(acked)))
                }
            }
        };
        let hash = self.script.get_hash().as_bytes();
        match send(with("EVALSHA", hash)).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                tracing::debug!(
                    script = self.name,
                    "script not cached on the server, sending EVAL"
                );
                send(with("EVAL", self.source.as_bytes())).await
            }
            other => other,
        }
    }
}

/// The store's scripts; see their sources for arguments and replies.
pub(super) struct Scripts {
    /// `lua/create.lua`: inserts unless a live record holds the key.
    pub(super) create: Lua,
    /// `lua/save.lua`: compare-and-set on the version.
    pub(super) save: Lua,
    /// `lua/touch.lua`: sets the expiry of a live record.
    pub(super) touch: Lua,
    /// `lua/index_save.lua`: compare-and-set on a user's index.
    pub(super) index_save: Lua,
    /// `lua/index_delete.lua`: deletes a user's index of a given version.
    pub(super) index_delete: Lua,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Scripts {
            create: Lua::new(
                "create",
                concat!(
                    include_str!("lua/helpers.lua"),
                    include_str!("lua/create.lua")
                ),
            ),
            save: Lua::new(
                "save",
                concat!(
                    include_str!("lua/helpers.lua"),
                    include_str!("lua/save.lua")
                ),
            ),
            touch: Lua::new(
                "touch",
                concat!(
                    include_str!("lua/helpers.lua"),
                    include_str!("lua/touch.lua")
                ),
            ),
            index_save: Lua::new("index_save", include_str!("lua/index_save.lua")),
            index_delete: Lua::new("index_delete", include_str!("lua/index_delete.lua")),
        }
    }
}

/// The expiry argument of the scripts: ms since the epoch, or empty for
/// none.
pub(super) fn expiry_arg(at: Option<OffsetDateTime>) -> String {
    at.map(|t| unix_millis(t).to_string()).unwrap_or_default()
}

/// A script's reply: 1 done, 0 refused.
pub(super) fn reply_to_bool(op: &'static str, reply: i64) -> Result<bool> {
    match reply {
        0 => Ok(false),
        1 => Ok(true),
        reply => Err(Error::backend(RedisStoreError::UnexpectedReply {
            op,
            reply,
        })),
    }
}
