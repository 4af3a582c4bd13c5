//! The Lua scripts that make each L2 step atomic in Redis.

use std::sync::LazyLock;

use redis::Script;

/// Returns the value if present; otherwise takes the lease if it is free.
/// KEYS: value, generation, lease; ARGV: token, lease ms, and '1' to ignore
/// the value (early refresh of a value that is still there). Replies
/// `{1, value}`, `{2, generation}` (lease taken) or `{3, generation}`
/// (someone else holds it).
pub(super) static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("acquire.lua")));

/// Stores entries whose generation did not move since the fill began, and
/// frees the caller's lease. KEYS are (value, generation, lease) triples;
/// ARGV[1] is the lease token ('' for none), then (generation, ttl ms,
/// payload) per entry. Replies one 1 (stored) or 0 (stale) per entry.
pub(super) static FILL: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("fill.lua")));

/// Frees a lease (KEYS[1]) if the caller still holds it (token ARGV[1]).
pub(super) static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("release.lua")));

/// Bumps the generation (so running fills cannot store), drops the value and
/// any lease, and tells every instance. KEYS: value, generation, lease;
/// ARGV: generation ms, channel, message.
pub(super) static INVALIDATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("invalidate.lua")));
