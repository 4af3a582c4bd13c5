#!/usr/bin/env bash
# Measures stateful against the ceiling (the same app with no sessions)
# and side by side with the crates users would pick instead (tower-sessions
# 0.14 and its stores, actix-session 0.11), writes docs/benchmarks.md and
# prints every goal, met or not, computed from this one run.
#
#   scripts/bench.sh
#
# Every figure is compared with a baseline measured in the same run on the
# same machine:
#
#   1. the same cart app (benches/compare) in several builds: `ours` on
#      session-core + session-stores, `theirs` on tower-sessions,
#      `ceiling` with no session layer at all (on Redis: one raw GET of a
#      cart-sized value per read, through the connection type RedisStore
#      uses), `ours-metrics` (ours with the `metrics` features and a
#      Prometheus recorder), and on actix-web `actix-ours` (session-core's
#      `actix` front end) and `actix-theirs` (actix-session's
#      RedisSessionStore). Each runs on the memory, cookie, Redis and
#      DynamoDB stores where it can: oha on the read path (GET /cart) and
#      the write path (POST /cart/items): requests/s, p50, p99, CPU time
#      per request of the app and of Redis, Redis commands per request
#      (INFO commandstats, MONITOR), Redis round trips per request (a
#      counting proxy, 200 sequential requests), adds lost under load,
#      Redis bytes per session (MEMORY USAGE of every key after the
#      pre-filling) and heap bytes per session (the app's live heap
#      growth while pre-filling); Memcached runs ours alone
#      (tower-sessions has no Memcached store) and is compared with ours on
#      Redis; its commands per request are counted by the same proxy;
#   2. a concurrent-add probe: N concurrent adds of distinct items to one
#      session, then the lines that arrived; and each app on Redis under
#      callgrind: the instructions its process runs per read;
#   3. the criterion micro benches, each printing its ratio to a baseline
#      (cache-aside L1 and L2 hits, the fleet stampede, db-router's
#      reader(), the stores' codecs);
#   4. the whole shop under a mixed workload (scripts/bench_shop.sh, which
#      writes docs/benchmarks-shop.md): 3 instances with Redis sessions and
#      cache, against the same fleet on in-process sessions without cache
#      and against one instance.
#
# It starts the test services when DynamoDB is measured
# (scripts/services.sh up: dynalite for DynamoDB) plus a Redis of its own
# on BENCH_REDIS_PORT and two Memcached nodes of its own on
# BENCH_MEMCACHED_PORTS, so that no other client disturbs the command
# counts; installs oha if missing; builds everything
# before measuring anything.
#
# Settings (environment):
#   BENCH_DURATION=10s     measured time per point
#   BENCH_WARMUP=2s        warm-up per point
#   BENCH_CONNECTIONS=32   concurrent connections (oha -c)
#   BENCH_SESSIONS=1000    pre-filled sessions the load is spread over (oha
#                          picks u=000..999, taken modulo this number)
#   BENCH_ROUNDS=2         rounds per store, alternating who goes first
#   BENCH_PROBE_ADDS=64    concurrent adds in the probe
#   BENCH_STORES="memory cookie redis redis-near dynamodb memcached"
#   BENCH_IMPLS="ours theirs ceiling ours-metrics actix-ours actix-theirs"
#                          the builds measured (each where it has the store)
#   BENCH_MICRO=1          0 skips the criterion micro benches
#   BENCH_INSTRUCTIONS=1   0 skips counting each app's instructions per read
#                          on Redis with callgrind (valgrind, installed
#                          with apt-get if missing)
#   BENCH_INSTRUCTION_READS=2000  reads counted per app
#   BENCH_SCALING=1        0 skips the scaling series (ours on Redis):
#   BENCH_SCALING_LINES="1 20 200"          cart sizes
#   BENCH_SCALING_SESSIONS="10000 1000000"  sessions in the store
#   BENCH_SHOP=1           0 skips the whole shop under a mixed workload
#                          (scripts/bench_shop.sh, docs/benchmarks-shop.md)
#   BENCH_REDIS_PORT=6389  port of the bench's own Redis
#   BENCH_MEMCACHED_PORTS="11311 11312"  ports of the bench's own Memcached nodes
#   BENCH_OUT=docs/benchmarks.md
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
SESSIONS=${BENCH_SESSIONS:-1000}
ADDS=${BENCH_PROBE_ADDS:-64}
STORES=${BENCH_STORES:-memory cookie redis redis-near dynamodb memcached}
IMPLS=${BENCH_IMPLS:-ours theirs ceiling ours-metrics actix-ours actix-theirs}
MICRO=${BENCH_MICRO:-1}
INSTRUCTIONS=${BENCH_INSTRUCTIONS:-1}
INSTRUCTION_READS=${BENCH_INSTRUCTION_READS:-2000}
SHOP=${BENCH_SHOP:-1}
SCALING=${BENCH_SCALING:-1}
SCALING_LINES=${BENCH_SCALING_LINES:-1 20 200}
SCALING_SESSIONS=${BENCH_SCALING_SESSIONS:-10000 1000000}
ROUNDS=${BENCH_ROUNDS:-2}
REDIS_PORT=${BENCH_REDIS_PORT:-6389}
read -r -a MEMCACHED_PORTS <<<"${BENCH_MEMCACHED_PORTS:-11311 11312}"
OUT=${BENCH_OUT:-docs/benchmarks.md}

COMPARE=$ROOT/benches/compare
COMPARE_TARGET=$COMPARE/target
RESULTS=$COMPARE_TARGET/results
STARTED=$(date +%s)

step() { printf '\n==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() { printf 'bench.sh: %s\n' "$*" >&2; exit 1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# shellcheck source=scripts/bench_lib.sh
source scripts/bench_lib.sh

rm -rf "$RESULTS"
mkdir -p "$RESULTS/http" "$RESULTS/probe" "$RESULTS/micro"

# ---- prerequisites --------------------------------------------------------

step "services"
# Only DynamoDB (dynalite) comes from the test services; without it in
# BENCH_STORES the running services' settings are enough.
if [[ " $STORES " == *" dynamodb "* ]]; then
  services_env=$(scripts/services.sh up) || die "scripts/services.sh up failed"
else
  services_env=$(scripts/services.sh env) || die "scripts/services.sh env failed"
fi
eval "$services_env"
command -v python3 >/dev/null || die "python3 is needed to read oha's JSON"
command -v curl >/dev/null || die "curl is needed to read the carts back"

if ! command -v oha >/dev/null; then
  step "installing oha (cargo install oha --locked)"
  cargo install oha --locked
  export PATH="$HOME/.cargo/bin:$PATH"
fi

if [[ $INSTRUCTIONS == 1 ]] && ! command -v valgrind >/dev/null; then
  step "installing valgrind (apt-get)"
  apt-get update && apt-get install -y valgrind
fi

step "Redis of the bench on 127.0.0.1:$REDIS_PORT"
start_redis "$REDIS_PORT" "$RESULTS/redis.log" BENCH_REDIS_PORT
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

memcached_ping() { # PORT
  ( exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'mn\r\n' >&3 && IFS= read -r -t 2 line <&3 &&
    [ "$line" = $'MN\r' ] ) 2>/dev/null
}

if [[ " $STORES " == *" memcached "* ]]; then
  step "Memcached nodes of the bench on 127.0.0.1:${MEMCACHED_PORTS[*]}"
  command -v memcached >/dev/null || die "memcached is not installed (scripts/services.sh up installs it)"
  mc_user=()
  if [ "$(id -u)" -eq 0 ]; then mc_user=(-u root); fi
  urls=()
  for port in "${MEMCACHED_PORTS[@]}"; do
    memcached_ping "$port" &&
      die "port $port already answers; set BENCH_MEMCACHED_PORTS to free ports"
    memcached -l 127.0.0.1 -p "$port" -U 0 -m 256 "${mc_user[@]}" \
      >>"$RESULTS/memcached-$port.log" 2>&1 &
    PIDS+=("$!")
    for _ in $(seq 50); do
      memcached_ping "$port" && break
      sleep 0.1
    done
    memcached_ping "$port" || die "the bench's Memcached on $port did not start"
    urls+=("127.0.0.1:$port")
  done
  MEMCACHED_URLS=$(IFS=,; echo "${urls[*]}")
  export MEMCACHED_URLS
fi

# ---- build everything before measuring anything ---------------------------

step "building benches/compare (release; its own workspace and lock file)"
BIN=$COMPARE_TARGET/release
# `ours` with the metrics features first, kept as `ours-metrics`; then every
# binary without them (cargo keeps both builds of the libraries).
CARGO_TARGET_DIR=$COMPARE_TARGET cargo build --release --locked \
  --manifest-path "$COMPARE/Cargo.toml" --bin ours --features metrics
cp "$BIN/ours" "$BIN/ours-metrics"
CARGO_TARGET_DIR=$COMPARE_TARGET cargo build --release --locked \
  --manifest-path "$COMPARE/Cargo.toml" --bins

MICRO_BENCHES=(
  "session-stores|--features redis --bench stores"
  "session-stores|--features cookie --bench cookie"
  "cache-aside|--features full --bench hit_path"
  "cache-aside|--features full --bench stampede"
  "db-router|--features sqlite"
)
if [[ $MICRO == 1 ]]; then
  step "building the micro benches"
  for entry in "${MICRO_BENCHES[@]}"; do
    # shellcheck disable=SC2086
    cargo bench --locked -p "${entry%%|*}" ${entry#*|} --no-run ||
      note "build failed: ${entry%%|*} ${entry#*|} (its row will say so)"
  done
fi

# ---- machine --------------------------------------------------------------

{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel=$(uname -sr)"
  echo "rustc=$(rustc --version)"
  echo "oha=$(oha --version)"
  echo "redis=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
  echo "memcached=$(memcached -V 2>/dev/null | cut -d' ' -f2)"
  echo "load_start=$(load)"
  echo "duration=$DURATION"
  echo "warmup=$WARMUP"
  echo "connections=$CONNECTIONS"
  echo "sessions=$SESSIONS"
  echo "adds=$ADDS"
  echo "rounds=$ROUNDS"
} >"$RESULTS/machine.txt"

# ---- HTTP comparison ------------------------------------------------------

start_server() { # impl store -> sets SERVER_PID, PORT
  start_server_with "" "$@"
}

start_server_with() { # wrapper impl store: the app run under `wrapper` (words)
  local wrapper=$1 impl=$2 store=$3 ready="$RESULTS/http/$3.$2.ready"
  # shellcheck disable=SC2086
  $wrapper "$BIN/$impl" serve --store "$store" --port 0 --sessions "$SESSIONS" \
    >"$ready.out" 2>>"$RESULTS/http/$store.$impl.stderr" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq "${START_WAIT:-1200}"); do
    grep -q '^READY ' "$ready.out" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null ||
      { tail -5 "$RESULTS/http/$store.$impl.stderr" >&2; die "$impl ($store) exited while starting"; }
    sleep 0.1
  done
  grep '^READY ' "$ready.out" | sed 's/^READY //' >"$ready.json" ||
    die "$impl ($store) not ready after $((${START_WAIT:-1200} / 10)) s"
  PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$ready.json")
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

run_oha() { # out-file duration method url
  local out=$1 duration=$2 method=$3 url=$4
  oha --no-tui --output-format json -c "$CONNECTIONS" -z "$duration" -w -m "$method" \
    --rand-regex-url "$url" >"$out"
}

# CPU time (user + system, in clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# A timed run that also records the CPU time the app and Redis spent on it:
# less sensitive than requests/s to other work on the machine.
timed_run() { # out-file method url store
  local out=$1 method=$2 url=$3 store=$4 app0 redis0
  app0=$(ticks "$SERVER_PID")
  redis0=$(ticks "$REDIS_PID")
  run_oha "$out" "$DURATION" "$method" "$url"
  printf '{"clk_tck": %s, "app": %s, "redis": %s}\n' "$(getconf CLK_TCK)" \
    "$(($(ticks "$SERVER_PID") - app0))" \
    "$(if [[ $store == redis* ]]; then echo $(($(ticks "$REDIS_PID") - redis0)); else echo null; fi)" \
    >"${out%.json}.cpu.json"
}

# Commands the app sends to Redis per request, told apart from those that
# its Lua scripts run: MONITOR over 200 sequential requests (MONITOR slows
# Redis down, so never during a timed run).
count_round_trips() { # method url out-file
  local method=$1 url=$2 out=$3 log="$3.log" mon
  redis-cli -p "$REDIS_PORT" monitor >"$log" &
  mon=$!
  sleep 0.3
  oha --no-tui --output-format json -c 1 -n 200 -m "$method" --rand-regex-url "$url" >/dev/null
  sleep 0.3
  kill "$mon" 2>/dev/null || true
  wait "$mon" 2>/dev/null || true
  python3 - "$log" 200 >"$out" <<'PY'
import json, re, sys
client = script = 0
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r'^[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"', line)
    if not m:
        continue
    if m.group(1) == "lua":
        script += 1
    else:
        client += 1
n = int(sys.argv[2])
print(json.dumps({"requests": n, "round_trips_per_request": client / n,
                  "commands_per_request": (client + script) / n}))
PY
}

# A counting proxy (scripts/bench_proxy.py) in front of `upstream:listen`
# pairs; sets PROXY_PID. Its counts are in the JSON file `out`.
start_proxy() { # out protocol listen:upstream...
  python3 scripts/bench_proxy.py "$@" &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  for _ in $(seq 50); do
    [ -s "$1" ] && return
    sleep 0.1
  done
  die "the counting proxy did not start"
}

stop_proxy() {
  kill "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true
}

# What a proxy counted over 200 sequential requests of each path, per
# request: `$base.<path>.<name>.json` with round_trips_per_request and
# commands_per_request.
count_through_proxy() { # base name counts-file
  local base=$1 name=$2 counts=$3 path method url before after
  for path in read write; do
    if [[ $path == read ]]; then method=GET; url="http://127.0.0.1:$PORT/cart\?u=[0-9]{3}"
    else method=POST; url="http://127.0.0.1:$PORT/cart/items\?u=[0-9]{3}&sku=$LOAD_SKU"; fi
    before=$(cat "$counts")
    oha --no-tui --output-format json -c 1 -n 200 -m "$method" --rand-regex-url "$url" >/dev/null
    sleep 0.2
    after=$(cat "$counts")
    python3 -c 'import json,sys; b,a=json.loads(sys.argv[1]),json.loads(sys.argv[2]); print(json.dumps({"requests": 200, "round_trips_per_request": (a["round_trips"] - b["round_trips"]) / 200, "commands_per_request": (a["commands"] - b["commands"]) / 200}))' \
      "$before" "$after" >"$base.$path.$name.json"
  done
}

# Memcached commands and round trips the app sends per request: a second
# server whose MEMCACHED_URLS point at a proxy in front of each node.
count_memcached_commands() { # base
  local base=$1 listen=() port saved=$MEMCACHED_URLS
  for port in "${MEMCACHED_PORTS[@]}"; do listen+=("$((port + 1000)):$port"); done
  start_proxy "$base.memcached-counts" memcached "${listen[@]}"
  MEMCACHED_URLS=$(printf '127.0.0.1:%s,' "${listen[@]%%:*}")
  MEMCACHED_URLS=${MEMCACHED_URLS%,}
  export MEMCACHED_URLS
  start_server ours memcached
  count_through_proxy "$base" memcached "$base.memcached-counts"
  stop_server
  stop_proxy
  MEMCACHED_URLS=$saved
  export MEMCACHED_URLS
}

# Redis round trips per request: a second server of `impl` whose REDIS_URL
# points at the proxy (pre-filling few sessions, as the counts do not
# depend on their number).
count_redis_round_trips() { # impl store base
  local impl=$1 store=$2 base=$3 saved=$REDIS_URL saved_sessions=$SESSIONS
  start_proxy "$base.redis-counts" redis "$((REDIS_PORT + 1000)):$REDIS_PORT"
  export REDIS_URL="redis://127.0.0.1:$((REDIS_PORT + 1000))"
  SESSIONS=50
  start_server "$impl" "$store"
  count_through_proxy "$base" trips "$base.redis-counts"
  stop_server
  stop_proxy
  SESSIONS=$saved_sessions
  export REDIS_URL=$saved
}

# Redis bytes of the app's keys per pre-filled session: MEMORY USAGE of
# every key (the bench's Redis holds only this app's, flushed before it
# started), summed and divided by the sessions.
redis_memory() { # out-file
  local keys bytes
  keys=$(rcli dbsize)
  bytes=$(rcli --scan | sed 's/^/MEMORY USAGE "/; s/$/" SAMPLES 0/' | rcli | awk '{ s += $1 } END { print s + 0 }')
  printf '{"sessions": %s, "keys": %s, "bytes": %s}\n' "$SESSIONS" "$keys" "$bytes" >"$1"
}

# The builds that run on a store: the ceiling has memory and Redis (raw
# GET), tower-sessions has no Memcached store, the actix-web apps run on
# Redis; BENCH_IMPLS picks among them.
impls_for() { # store
  local impl all=()
  case $1 in
    memory) all=(ours theirs ceiling) ;;
    redis) all=(ours theirs ceiling ours-metrics actix-ours actix-theirs) ;;
    memcached) all=(ours) ;;
    *) all=(ours theirs) ;;
  esac
  for impl in "${all[@]}"; do
    if [[ " $IMPLS " == *" $impl "* ]]; then echo "$impl"; fi
  done
}

LOAD_SKU=SKU-000007
for store in $STORES; do
  mapfile -t impls < <(impls_for "$store")
  for round in $(seq "$ROUNDS"); do
    # Rotate who goes first, so that a drift in the machine's load does
    # not always favour the same side.
    shift_by=$(((round - 1) % ${#impls[@]}))
    order=("${impls[@]:shift_by}" "${impls[@]:0:shift_by}")
    for impl in "${order[@]}"; do
      step "$store, round $round/$ROUNDS: $impl (load $(load))"
      if [[ $store == redis* ]]; then rcli flushall >/dev/null; fi
      start_server "$impl" "$store"
      base="$RESULTS/http/$store.$impl.r$round"
      cp "$RESULTS/http/$store.$impl.ready.json" "$base.ready.json"
      if [[ $store == redis* && $round == 1 ]]; then redis_memory "$base.memory.json"; fi
      read_url="http://127.0.0.1:$PORT/cart\?u=[0-9]{3}"
      write_url="http://127.0.0.1:$PORT/cart/items\?u=[0-9]{3}&sku=$LOAD_SKU"

      run_oha /dev/null "$WARMUP" GET "$read_url"
      if [[ $store == redis* ]]; then rcli config resetstat >/dev/null; fi
      timed_run "$base.read.json" GET "$read_url" "$store"
      if [[ $store == redis* ]]; then rcli info commandstats >"$base.read.redis"; fi

      run_oha /dev/null "$WARMUP" POST "$write_url"
      curl -fsS "http://127.0.0.1:$PORT/bench/total" >"$base.write.before.json"
      if [[ $store == redis* ]]; then rcli config resetstat >/dev/null; fi
      timed_run "$base.write.json" POST "$write_url" "$store"
      if [[ $store == redis* ]]; then rcli info commandstats >"$base.write.redis"; fi
      curl -fsS "http://127.0.0.1:$PORT/bench/total" >"$base.write.after.json"

      if [[ $store == redis* && $round == 1 ]]; then
        count_round_trips GET "$read_url" "$base.read.monitor.json"
        count_round_trips POST "$write_url" "$base.write.monitor.json"
      fi
      load >"$base.load"
      stop_server
      if [[ $store == redis* && $round == 1 ]]; then
        count_redis_round_trips "$impl" "$store" "$base"
      fi
      if [[ $store == memcached && $round == 1 ]]; then
        count_memcached_commands "$base"
      fi
    done
  done
  for impl in "${impls[@]}"; do
    if [[ $impl == ceiling || $impl == ours-metrics ]]; then continue; fi
    note "probe: $impl, $ADDS concurrent adds"
    "$BIN/$impl" probe --store "$store" --adds "$ADDS" >"$RESULTS/probe/$store.$impl.json" \
      2>"$RESULTS/probe/$store.$impl.stderr" ||
      note "probe failed: $impl $store (see $RESULTS/probe/$store.$impl.stderr)"
  done
done

# ---- instructions per read -------------------------------------------------

# The app's own instructions per read, counted by callgrind: what the figures
# above measure in time, without the machine's noise (no kernel time, no
# load generator, no Redis). Each app on Redis answers the same reads
# under valgrind; instructions are counted only while the measured reads
# run.
if [[ $INSTRUCTIONS == 1 && " $STORES " == *" redis "* ]]; then
  mkdir -p "$RESULTS/instructions"
  for impl in $(impls_for redis); do
    if [[ $impl == ours-metrics ]]; then continue; fi
    step "instructions per read: $impl under callgrind"
    rcli flushall >/dev/null
    out="$RESULTS/instructions/$impl"
    # 200 sessions: pre-filling under valgrind is slow.
    SESSIONS=200 START_WAIT=3000 start_server_with \
      "valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$out.%p.callgrind" "$impl" redis
    read_url="http://127.0.0.1:$PORT/cart\?u=[0-9]{3}"
    oha --no-tui -c 8 -n 500 --rand-regex-url "$read_url" >/dev/null
    callgrind_control -i on "$SERVER_PID" >/dev/null
    oha --no-tui --output-format json -c 8 -n "$INSTRUCTION_READS" --rand-regex-url "$read_url" >"$out.oha.json"
    callgrind_control -i off "$SERVER_PID" >/dev/null
    callgrind_control -d "$SERVER_PID" >/dev/null
    stop_server
    python3 - "$out" "$INSTRUCTION_READS" >"$out.json" <<'PY'
import glob, json, re, sys
out, reads = sys.argv[1], int(sys.argv[2])
total = 0
# The dump asked for, and the one written at exit: each counts from the
# last dump, so their sum is all that was counted.
for path in glob.glob(out + ".*.callgrind*"):
    for line in open(path, errors="replace"):
        m = re.match(r"^totals: (\d+)", line)
        if m:
            total += int(m.group(1))
            break
ok = sum(n for code, n in (json.load(open(out + ".oha.json")).get("statusCodeDistribution") or {}).items()
         if code.startswith("2"))
print(json.dumps({"reads": reads, "ok": ok, "instructions": total}))
PY
  done
fi

# ---- scaling ---------------------------------------------------------------

# How ours on Redis grows with the work: the cart's size (the pre-filled
# carts have BENCH_CART_LINES lines; the adds raise the quantity of the
# first line, so the size holds), and the sessions in the store (reads and
# writes spread over all of them).
if [[ $SCALING == 1 && " $STORES " == *" redis "* ]]; then
  mkdir -p "$RESULTS/scaling"
  scaling_point() { # name sessions digits
    local name=$1 digits=$3 base="$RESULTS/scaling/$1" read_url write_url saved=$SESSIONS
    step "scaling: $name (load $(load))"
    rcli flushall >/dev/null
    SESSIONS=$2
    # Pre-filling a million sessions takes minutes.
    START_WAIT=$((1200 + SESSIONS / 50)) start_server ours redis
    cp "$RESULTS/http/redis.ours.ready.json" "$base.ready.json"
    if ((SESSIONS <= 10000)); then redis_memory "$base.memory.json"; fi
    SESSIONS=$saved
    read_url="http://127.0.0.1:$PORT/cart\?u=[0-9]{$digits}"
    write_url="http://127.0.0.1:$PORT/cart/items\?u=[0-9]{$digits}&sku=SKU-000000"
    run_oha /dev/null "$WARMUP" GET "$read_url"
    timed_run "$base.read.json" GET "$read_url" redis
    run_oha /dev/null "$WARMUP" POST "$write_url"
    timed_run "$base.write.json" POST "$write_url" redis
    stop_server
  }
  for lines in $SCALING_LINES; do
    export BENCH_CART_LINES=$lines
    scaling_point "lines-$lines" "$SESSIONS" 3
  done
  unset BENCH_CART_LINES
  for n in $SCALING_SESSIONS; do
    scaling_point "sessions-$n" "$n" "${#n}"
  done
  rcli flushall >/dev/null
fi

# ---- micro benches --------------------------------------------------------

if [[ $MICRO == 1 ]]; then
  i=0
  for entry in "${MICRO_BENCHES[@]}"; do
    i=$((i + 1))
    log="$RESULTS/micro/$i.log"
    echo "cargo bench -p ${entry%%|*} ${entry#*|}" >"$log.cmd"
    step "micro: cargo bench -p ${entry%%|*} ${entry#*|} (load $(load))"
    # shellcheck disable=SC2086
    if ! cargo bench --locked -p "${entry%%|*}" ${entry#*|} >"$log" 2>"$log.stderr"; then
      echo "FAILED" >>"$log"
      note "failed: see $log.stderr"
    fi
  done
fi

# ---- the whole shop ---------------------------------------------------------

rm -rf "$COMPARE_TARGET/shop-results"
if [[ $SHOP == 1 ]]; then
  step "the whole shop under a mixed workload (scripts/bench_shop.sh, load $(load))"
  scripts/bench_shop.sh >"$RESULTS/shop.log" 2>&1 || note "the whole-shop run failed: see $RESULTS/shop.log"
fi

echo "load_end=$(load)" >>"$RESULTS/machine.txt"
echo "elapsed_s=$(($(date +%s) - STARTED))" >>"$RESULTS/machine.txt"

step "writing $OUT"
python3 scripts/bench_report.py "$RESULTS" "$OUT"
echo "$OUT written; raw results in ${RESULTS#"$ROOT"/}" >&2
