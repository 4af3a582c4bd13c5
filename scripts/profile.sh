#!/usr/bin/env bash
# Profiles the Redis read path of benches/compare's `ours` (GET /cart of a
# pre-filled 20-line cart on RedisStore) with perf and draws the flame graph
# as an SVG.
#
#   scripts/profile.sh [OUT.svg]     (default docs/flamegraph-redis-read.svg)
#
# Needs perf (Debian's linux-perf, installed with apt-get if missing) and
# inferno (`cargo install inferno --locked` if missing); builds
# benches/compare as scripts/bench.sh does, then starts a Redis of its own,
# the app, and oha's load, and records the app's stacks (DWARF unwinding:
# the release profile keeps line tables) while the load runs.
#
# Settings (environment):
#   PROFILE_SECONDS=5       recorded time
#   PROFILE_CONNECTIONS=32  oha -c
#   PROFILE_IMPL=ours       the binary of benches/compare
#   PROFILE_STORE=redis     its --store (redis-near: with the near cache)
#   PROFILE_REDIS_PORT=6388 port of the profile's own Redis
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${1:-docs/flamegraph-redis-read.svg}
SECONDS_RECORDED=${PROFILE_SECONDS:-5}
CONNECTIONS=${PROFILE_CONNECTIONS:-32}
IMPL=${PROFILE_IMPL:-ours}
STORE=${PROFILE_STORE:-redis}
REDIS_PORT=${PROFILE_REDIS_PORT:-6388}
COMPARE=$PWD/benches/compare
BIN=$COMPARE/target/release
WORK=$COMPARE/target/profile
mkdir -p "$WORK"

die() { printf 'profile.sh: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/bench_lib.sh
source scripts/bench_lib.sh

command -v perf >/dev/null || { apt-get update && apt-get install -y linux-perf; }
export PATH="$HOME/.cargo/bin:$PATH"
command -v oha >/dev/null || cargo install oha --locked
command -v inferno-flamegraph >/dev/null || cargo install inferno --locked

CARGO_TARGET_DIR=$COMPARE/target cargo build --release --locked \
  --manifest-path "$COMPARE/Cargo.toml" --bin "$IMPL"

start_redis "$REDIS_PORT" "$WORK/redis.log" PROFILE_REDIS_PORT

"$BIN/$IMPL" serve --store "$STORE" --port 0 --sessions 1000 >"$WORK/ready.out" 2>"$WORK/app.stderr" &
APP=$!
PIDS+=("$APP")
for _ in $(seq 600); do
  grep -q '^READY ' "$WORK/ready.out" 2>/dev/null && break
  kill -0 "$APP" 2>/dev/null || die "the app exited while starting (see $WORK/app.stderr)"
  sleep 0.1
done
PORT=$(sed -n 's/^READY .*"port":\([0-9]*\).*/\1/p' "$WORK/ready.out")
[ -n "$PORT" ] || die "the app did not get ready"

url="http://127.0.0.1:$PORT/cart\?u=[0-9]{3}"
load_for() { oha --no-tui -c "$CONNECTIONS" -z "$1" --rand-regex-url "$url" >/dev/null; }
load_for 2s
load_for "$((SECONDS_RECORDED + 2))s" &
LOAD=$!
sleep 1
perf record -F 499 --call-graph dwarf,16384 -o "$WORK/perf.data" -p "$APP" \
  -- sleep "$SECONDS_RECORDED" 2>"$WORK/perf.stderr"
wait "$LOAD"
perf script -i "$WORK/perf.data" 2>/dev/null | inferno-collapse-perf >"$WORK/stacks.folded"
inferno-flamegraph --minwidth 1 --title "$IMPL on $STORE: GET /cart under oha -c $CONNECTIONS" \
  <"$WORK/stacks.folded" >"$OUT"
echo "$OUT written (folded stacks in ${WORK#"$PWD"/}/stacks.folded)" >&2
