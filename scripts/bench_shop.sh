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
# checkouts. These setups, measured in the same run, one after the other,
# each BENCH_SHOP_ROUNDS times (the best round counts):
#
#   fleet      3 instances behind HAProxy, sessions and the product cache
#              in Redis (SESSION_STORE=redis, CACHE=redis);
#   fleet-2, fleet-1
#              the same with 2 and 1 instances left behind HAProxy;
#   single     one instance, sessions and cache in Redis, reached directly;
#   baseline   the 3 instances on in-process sessions (HAProxy sticky, as
#              they need) and no cache: what the shared tiers cost.
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

measure() { # name round address
  log "$1, round $2: $CONNECTIONS browsers, ${WARMUP}s warm-up, ${SECONDS_PER_ROUND}s measured"
  "$MIX" --addr "$3" --connections "$CONNECTIONS" --warmup "$WARMUP" \
    --seconds "$SECONDS_PER_ROUND" >"$RESULTS/$1-$2.json"
  log "$1, round $2: $(cat "$RESULTS/$1-$2.json")"
}

lab_up() { # session-store cache [--sticky]
  lab_down
  LAB_SHOP_BIN="$SHOP_BIN" LAB_SESSION_STORE=$1 LAB_CACHE=$2 RUST_LOG=warn \
    scripts/lab.sh up ${3:-} >/dev/null
}

# Takes shop N out: HAProxy's health check (every 500 ms, 2 failures)
# stops sending it requests.
drop_instance() {
  scripts/lab.sh kill "shop$1" >/dev/null
  sleep 2
}

for round in $(seq 1 "$ROUNDS"); do
  log "round $round: the Redis fleet, then with 2 and 1 instances behind HAProxy"
  lab_up redis redis
  measure fleet "$round" "127.0.0.1:$LAB_PORT"
  drop_instance 3
  measure fleet-2 "$round" "127.0.0.1:$LAB_PORT"
  drop_instance 2
  measure fleet-1 "$round" "127.0.0.1:$LAB_PORT"
  log "round $round: one instance reached directly"
  measure single "$round" "127.0.0.1:3101"
  log "round $round: the in-process fleet without cache"
  lab_up memory none --sticky
  measure baseline "$round" "127.0.0.1:$LAB_PORT"
done
lab_down

python3 - "$RESULTS" "$OUT" "$CONNECTIONS" "$SECONDS_PER_ROUND" "$ROUNDS" <<'PY'
import glob, json, os, re, sys
results, out, connections, seconds, rounds = sys.argv[1:]
setups = {
    "fleet": "3 instances behind HAProxy, sessions and product cache in Redis",
    "baseline": "the same 3 instances on in-process sessions (sticky) and no cache",
    "single": "1 instance, sessions and product cache in Redis, reached directly",
    "fleet-2": "2 instances behind HAProxy, Redis sessions and cache",
    "fleet-1": "1 instance behind HAProxy, Redis sessions and cache",
}
best = {}
for name in setups:
    runs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(results, f"{name}-*.json")))
            if re.fullmatch(re.escape(name) + r"-\d+\.json", os.path.basename(p))]
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
lines += ["", "## Instances", "",
          "The same Redis fleet with 1, 2 and 3 instances behind HAProxy (the",
          "others taken out by its health check), and one instance without HAProxy:", "",
          "| instances | requests/s | vs 1 behind HAProxy | p99 ms |",
          "|-----------|-----------:|--------------------:|-------:|"]
one = best["fleet-1"]["requests_per_s"]
for name, label in (("single", "1, no HAProxy"), ("fleet-1", "1"), ("fleet-2", "2"), ("fleet", "3")):
    r = best[name]
    lines.append(f"| {label} | {r['requests_per_s']:.0f} | {r['requests_per_s'] / one:.2f}× | {r['p99_ms']:.2f} |")
lines += ["",
          f"This machine has {os.cpu_count()} cores for the load generator, HAProxy, every",
          "instance, Redis and PostgreSQL together, so another instance brings no",
          "CPU of its own: the rate can only stay level or fall (more processes",
          "sharing the cores, each with its own caches and pools). What grows with",
          "instances on separate hosts is what each instance does alone; what does",
          "not is whatever they share: the load balancer, Redis and the database.",
          "",
          "Per kind of request (p50 / p99 ms):", "",
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
