#!/usr/bin/env bash
# The whole shop under a mixed workload, on the lab's topology
# (scripts/lab.sh: HAProxy, three shop instances, Redis with a replica, a
# PostgreSQL primary and its streaming replica), and writes
# docs/benchmarks-shop.md.
#
#   scripts/bench_shop.sh
#
# Each connection of the load generator (benches/compare's `shop-mix`) is
# one signed-in browser: 70 % product pages, 20 % cart reads, 8 % adds, 2 %
# checkouts. Three setups, measured in the same run, one after the other,
# each BENCH_SHOP_ROUNDS times (the best round counts):
#
#   fleet      3 instances behind HAProxy, sessions and the product cache
#              in Redis (SESSION_STORE=redis, CACHE=redis);
#   baseline   the same fleet on in-process sessions (HAProxy sticky, as
#              they need) and no cache: what the shared tiers cost;
#   single     one instance, sessions and cache in Redis, reached directly.
#
# The shop is built in release mode (cargo build --release -p shop) and the
# load generator with benches/compare's lock file. The load generator
# shares the 2 cores with everything else, as in scripts/bench.sh.
#
# Settings (environment):
#   BENCH_SHOP_SECONDS=20     measured time per round
#   BENCH_SHOP_WARMUP=3       warm-up per round (signed-in browsers, caches)
#   BENCH_SHOP_CONNECTIONS=32 browsers (one connection each)
#   BENCH_SHOP_ROUNDS=2       rounds per setup
#   BENCH_SHOP_OUT=docs/benchmarks-shop.md
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SECONDS_PER_ROUND=${BENCH_SHOP_SECONDS:-20}
WARMUP=${BENCH_SHOP_WARMUP:-3}
CONNECTIONS=${BENCH_SHOP_CONNECTIONS:-32}
ROUNDS=${BENCH_SHOP_ROUNDS:-2}
OUT=${BENCH_SHOP_OUT:-docs/benchmarks-shop.md}
RESULTS=$ROOT/benches/compare/target/shop-results
LAB_PORT=${LAB_PORT:-8480}

log() { printf '[bench-shop] %s\n' "$*" >&2; }

log "building the shop (release) and the load generator"
cargo build --release --locked -p shop >&2
SHOP_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/shop"
(cd benches/compare && cargo build --release --locked --bin shop-mix >&2)
MIX="$ROOT/benches/compare/target/release/shop-mix"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

lab_down() { scripts/lab.sh down >/dev/null 2>&1 || true; }
trap lab_down EXIT

# setup name, lab settings, the address measured
run_setup() {
  local name=$1 store=$2 cache=$3 sticky=$4 addr=$5 round
  for round in $(seq 1 "$ROUNDS"); do
    lab_down
    log "$name, round $round: starting the lab (SESSION_STORE=$store CACHE=$cache)"
    LAB_SHOP_BIN="$SHOP_BIN" LAB_SESSION_STORE=$store LAB_CACHE=$cache RUST_LOG=warn \
      scripts/lab.sh up $sticky >/dev/null
    log "$name, round $round: $CONNECTIONS browsers, ${WARMUP}s warm-up, ${SECONDS_PER_ROUND}s measured"
    "$MIX" --addr "$addr" --connections "$CONNECTIONS" --warmup "$WARMUP" \
      --seconds "$SECONDS_PER_ROUND" >"$RESULTS/$name-$round.json"
    log "$name, round $round: $(cat "$RESULTS/$name-$round.json")"
  done
  lab_down
}

run_setup fleet redis redis "" "127.0.0.1:$LAB_PORT"
run_setup baseline memory none --sticky "127.0.0.1:$LAB_PORT"
run_setup single redis redis "" "127.0.0.1:3101"

python3 - "$RESULTS" "$OUT" "$CONNECTIONS" "$SECONDS_PER_ROUND" "$ROUNDS" <<'PY'
import glob, json, os, platform, subprocess, sys
results, out, connections, seconds, rounds = sys.argv[1:]
setups = {
    "fleet": "3 instances behind HAProxy, sessions and product cache in Redis",
    "baseline": "the same 3 instances on in-process sessions (sticky) and no cache",
    "single": "1 instance, sessions and product cache in Redis",
}
best = {}
for name in setups:
    runs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(results, f"{name}-*.json")))]
    best[name] = max(runs, key=lambda r: r["requests_per_s"])
fleet = best["fleet"]
lines = [
    "# The whole shop under a mixed workload",
    "",
    "Written by `scripts/bench_shop.sh`; every figure below comes from one run of it,",
    f"on {os.cpu_count()} cores shared by the load generator, HAProxy, the shops, Redis and PostgreSQL.",
    "",
    f"Each of {connections} connections is one signed-in browser: 70 % product pages",
    "(`GET /products/{sku}`, HTML), 20 % cart reads (`GET /api/cart`), 8 % adds",
    "(`POST /api/cart/items`), 2 % checkouts (an add, then `POST /api/checkout`,",
    "one PostgreSQL transaction on the primary), one after the other without pause.",
    f"Best of {rounds} rounds of {seconds} s per setup. The database is the lab's:",
    "a PostgreSQL primary and its streaming replica; product reads go through",
    "`db-router` (replica first) and, where the cache is on, through `cache-aside`",
    "(moka in process, then Redis).",
    "",
    "| setup | requests/s | vs the fleet | p50 ms | p99 ms | failed |",
    "|-------|-----------:|-------------:|-------:|-------:|-------:|",
]
for name, what in setups.items():
    r = best[name]
    failed = sum(r["failures"].values())
    lines.append(
        f"| {name}: {what} | {r['requests_per_s']:.0f} | {r['requests_per_s'] / fleet['requests_per_s']:.2f}× "
        f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {failed} |"
    )
lines += ["", "Per kind of request (p50 / p99 ms):", "",
          "| setup | product page | cart read | add | checkout |",
          "|-------|--------------|-----------|-----|----------|"]
for name in setups:
    k = best[name]["kinds"]
    cells = [f"{k[x]['p50_ms']:.2f} / {k[x]['p99_ms']:.2f}" if x in k else "–"
             for x in ("product page", "cart read", "add", "checkout")]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
failures = {n: best[n]["failures"] for n in setups if best[n]["failures"]}
lines += ["", "Requests not answered with a success: " +
          (json.dumps(failures) if failures else "none.")]
lines += ["", "Raw results: `benches/compare/target/shop-results/*.json`.", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
