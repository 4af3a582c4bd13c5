#!/usr/bin/env bash
# The shop's AWS architecture on one machine, on loopback, to explore:
# HAProxy (the load balancer) in front of three shop instances, Redis with a
# replica (ElastiCache), and a PostgreSQL primary with a streaming replica
# (RDS). Every page's footer says which instance served it, the session
# store, and whether its data came from the primary, a replica or the cache.
#
#   scripts/lab.sh up [--sticky]   start everything (--sticky: HAProxy pins a
#                                  browser to one instance with a cookie);
#                                  prints the URL
#   scripts/lab.sh kill NAME       stop one piece abruptly (SIGKILL; the PostgreSQL
#                                  replica by an immediate shutdown)
#   scripts/lab.sh start NAME      start it again
#   scripts/lab.sh status          one line per piece: up/down and its address
#   scripts/lab.sh down            stop every piece of the lab
#
# NAME: shop1, shop2, shop3, haproxy, redis, redis-replica, pg-replica.
#
# The PostgreSQL primary is the test suite's (scripts/services.sh up, which
# installs what is missing); the lab adds its own replica of it, its own
# database (shop_lab) and everything else, under .services/lab. The shop is
# built with `cargo build -p shop` (or LAB_SHOP_BIN names the binary).
#
# Settings: LAB_PORT (HAProxy, default 8480; its stats page is LAB_PORT+1),
# LAB_SERVICES (the services script, default scripts/services.sh of this
# checkout), LAB_SHOP_BIN, LAB_SESSION_STORE (the shops' SESSION_STORE,
# default redis; memory needs `up --sticky`), LAB_CACHE (their CACHE,
# default redis).
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
LAB="$REPO/.services/lab"
RUN="$LAB/run"
LOGS="$LAB/logs"
SERVICES="${LAB_SERVICES:-$REPO/scripts/services.sh}"

PORT="${LAB_PORT:-8480}"
STATS_PORT=$((PORT + 1))
SHOP_PORTS=(3101 3102 3103)
REDIS_PORT=6480
REDIS_REPLICA_PORT=6481
PG_REPLICA_PORT=5444
DB=shop_lab
PIECES=(pg-replica redis redis-replica shop1 shop2 shop3 haproxy)

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits up to $1 seconds for the command that follows to succeed.
wait_for() {
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
  log "$what: ok"
}

pid_of() { # NAME -> pid if alive
  local f="$RUN/$1.pid" pid
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && printf '%s' "$pid"
}

# Runs a command in the background in its own session, output to its log.
spawn() { # NAME COMMAND...
  local name=$1; shift
  mkdir -p "$RUN" "$LOGS"
  printf '\n==== %s start %s\n' "$name" "$(date -u '+%F %T')" >>"$LOGS/$name.log"
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  printf '%s' "$!" >"$RUN/$name.pid"
}

kill_pid() { # NAME SIGNAL
  local pid
  pid="$(pid_of "$1")" || { log "$1 is not running"; rm -f "$RUN/$1.pid"; return 0; }
  kill "-$2" "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$RUN/$1.pid"
  log "$1 stopped"
}

# ------------------------------------------------------------ services

services_env() { # up|env
  [ -x "$SERVICES" ] || die "no services script at $SERVICES"
  local out
  out="$("$SERVICES" "$1")" || die "$SERVICES $1 failed"
  eval "$out"
  [ -n "${PG_PRIMARY_URL:-}" ] && [ -n "${PG_BIN:-}" ] || die "$SERVICES gave no PostgreSQL primary"
  PG_PRIMARY_PORT="${PG_PRIMARY_URL##*:}"; PG_PRIMARY_PORT="${PG_PRIMARY_PORT%%/*}"
}

psql_primary() { "$PG_BIN/psql" -X -q -tA -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U postgres -d postgres -c "$1"; }
psql_replica() { PGCONNECT_TIMEOUT=2 "$PG_BIN/psql" -X -q -tA -h 127.0.0.1 -p "$PG_REPLICA_PORT" -U postgres -d postgres -c "$1" 2>/dev/null; }

# PostgreSQL runs as postgres, which must reach the data directory.
pg_dir() {
  if runuser -u postgres -- test -x "$REPO/.services" 2>/dev/null; then
    printf '%s' "$LAB/pg-replica"
  else
    printf '/var/tmp/stateful-lab-%s/pg-replica' "$(printf '%s' "$REPO" | sha256sum | cut -c1-12)"
  fi
}
pg_as() { (cd / && runuser -u postgres -- "$@"); }

start_pg_replica() {
  local dir; dir="$(pg_dir)"
  if [ "$(psql_replica 'select pg_is_in_recovery()')" = "t" ]; then log "pg-replica already up"; return; fi
  port_open "$PG_REPLICA_PORT" && die "port $PG_REPLICA_PORT is taken by something else"
  if [ ! -f "$dir/standby.signal" ]; then
    log "pg-replica: copying the primary (pg_basebackup)"
    mkdir -p "$(dirname "$dir")"
    chmod 755 "$(dirname "$dir")"
    rm -rf "$dir"
    install -d -o postgres -g postgres -m 700 "$dir"
    pg_as "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U postgres -D "$dir" \
      -R -X stream -c fast -N >>"$LOGS/pg-replica.log" 2>&1 || die "pg_basebackup failed (see $LOGS/pg-replica.log)"
    printf '\n# ---- scripts/lab.sh ----\nport = %s\nrecovery_min_apply_delay = 0\n' "$PG_REPLICA_PORT" >>"$dir/postgresql.conf"
  fi
  rm -f "$dir/postmaster.pid"
  touch "$LOGS/pg-replica.log"; chmod 666 "$LOGS/pg-replica.log"
  pg_as "$PG_BIN/pg_ctl" -D "$dir" -l "$LOGS/pg-replica.log" -w -t 60 start >/dev/null ||
    die "pg-replica did not start (see $LOGS/pg-replica.log)"
  wait_for 60 "pg-replica streaming on :$PG_REPLICA_PORT" pg_streaming ||
    die "pg-replica does not stream from the primary (see $LOGS/pg-replica.log)"
}

pg_streaming() {
  [ "$(psql_replica "select count(*) from pg_stat_wal_receiver where status = 'streaming'")" = 1 ]
}

stop_pg_replica() {
  local dir; dir="$(pg_dir)"
  if [ -f "$dir/postmaster.pid" ]; then
    pg_as "$PG_BIN/pg_ctl" -D "$dir" -w -m immediate stop >/dev/null 2>&1 || true
    log "pg-replica stopped"
  else
    log "pg-replica is not running"
  fi
}

ensure_database() {
  if [ "$(psql_primary "select 1 from pg_database where datname = '$DB'")" != 1 ]; then
    psql_primary "create database $DB" >/dev/null || die "could not create database $DB"
  fi
}

# ------------------------------------------------------------ Redis

start_redis() { # NAME PORT [replicaof PORT]
  local name=$1 port=$2
  if pid_of "$name" >/dev/null; then log "$name already up"; return; fi
  port_open "$port" && die "port $port is taken by something else"
  local args=(--port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no
              --dir "$LAB" --dbfilename "$name.rdb")
  [ $# -eq 4 ] && args+=(--replicaof 127.0.0.1 "$4")
  spawn "$name" redis-server "${args[@]}"
  wait_for 20 "$name on :$port" redis_ping "$port" || die "$name did not start (see $LOGS/$name.log)"
}
redis_ping() { [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]; }

# ------------------------------------------------------------ shops

# The shop binary, copied into the lab at `up` so that a later build does
# not change the instances under a person's feet.
install_shop() {
  local bin="${LAB_SHOP_BIN:-}"
  if [ -z "$bin" ]; then
    log "building the shop (cargo build -p shop)"
    (cd "$REPO" && cargo build -p shop >&2) || die "cargo build -p shop failed"
    bin="${CARGO_TARGET_DIR:-$REPO/target}/debug/shop"
  fi
  [ -x "$bin" ] || die "no shop binary at $bin"
  mkdir -p "$LAB/bin"
  cp "$bin" "$LAB/bin/shop.new" && mv "$LAB/bin/shop.new" "$LAB/bin/shop"
}

start_shop() { # N
  local n=$1 name="shop$1" port="${SHOP_PORTS[$(($1 - 1))]}" bin
  if pid_of "$name" >/dev/null; then log "$name already up"; return; fi
  port_open "$port" && die "port $port is taken by something else"
  bin="$LAB/bin/shop"
  [ -x "$bin" ] || die "no shop binary at $bin (scripts/lab.sh up installs it)"
  # A clean environment: nothing of the caller (such as REDIS_CLUSTER_URLS)
  # reaches the shop but these settings.
  spawn "$name" env -i PATH="$PATH" SHOP_ADDR="127.0.0.1:$port" SHOP_INSTANCE="$name" SHOP_FOOTER=on \
    SESSION_STORE="${LAB_SESSION_STORE:-redis}" CACHE="${LAB_CACHE:-redis}" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PRIMARY_PORT/$DB" \
    DATABASE_REPLICA_URLS="postgres://postgres@127.0.0.1:$PG_REPLICA_PORT/$DB" \
    COOKIE_SECURE=false RUST_LOG="${RUST_LOG:-info}" "$bin"
  # Until it answers, or it exits (a backend it needs is down: it says which).
  wait_for 60 "$name on :$port answering or exited" answers_or_exits "$name" "$port"
  healthy "$port" || { tail -n 3 "$LOGS/$name.log" >&2; die "$name did not start (see $LOGS/$name.log)"; }
}
answers_or_exits() { healthy "$2" || ! pid_of "$1" >/dev/null; }
healthy() { [ "$(curl -sf --max-time 2 "http://127.0.0.1:$1/healthz" 2>/dev/null)" = ok ]; }

# ------------------------------------------------------------ HAProxy

write_haproxy_config() {
  local sticky="" cookie="" i
  [ -f "$LAB/sticky" ] && sticky="    cookie lab_server insert indirect nocache httponly"
  {
    printf 'global\n    maxconn 2000\n\ndefaults\n    mode http\n    timeout connect 1s\n'
    printf '    timeout client 30s\n    timeout server 30s\n    retries 2\n    option redispatch\n\n'
    printf 'frontend shop\n    bind 127.0.0.1:%s\n    default_backend shops\n\n' "$PORT"
    printf 'backend shops\n    balance roundrobin\n    option httpchk GET /healthz\n'
    [ -n "$sticky" ] && printf '%s\n' "$sticky"
    for i in 1 2 3; do
      [ -n "$sticky" ] && cookie=" cookie shop$i"
      printf '    server shop%s 127.0.0.1:%s check inter 500ms fall 2 rise 2%s\n' "$i" "${SHOP_PORTS[$((i - 1))]}" "$cookie"
    done
    printf '\nlisten stats\n    bind 127.0.0.1:%s\n    stats enable\n    stats uri /\n' "$STATS_PORT"
  } >"$LAB/haproxy.cfg"
}

start_haproxy() {
  have haproxy || die "haproxy is not installed (apt-get install haproxy)"
  if pid_of haproxy >/dev/null; then log "haproxy already up"; return; fi
  port_open "$PORT" && die "port $PORT is taken by something else"
  write_haproxy_config
  haproxy -c -q -f "$LAB/haproxy.cfg" || die "bad HAProxy configuration $LAB/haproxy.cfg"
  spawn haproxy haproxy -db -f "$LAB/haproxy.cfg"
  wait_for 20 "haproxy on :$PORT" port_open "$PORT" || die "haproxy did not start (see $LOGS/haproxy.log)"
}

# ------------------------------------------------------------ commands

start_piece() {
  case "$1" in
    shop1 | shop2 | shop3) start_shop "${1#shop}" ;;
    haproxy) start_haproxy ;;
    redis) start_redis redis "$REDIS_PORT" ;;
    redis-replica) start_redis redis-replica "$REDIS_REPLICA_PORT" replicaof "$REDIS_PORT" ;;
    pg-replica) start_pg_replica ;;
    *) die "unknown piece '$1' (one of: ${PIECES[*]})" ;;
  esac
}

kill_piece() {
  case "$1" in
    shop1 | shop2 | shop3 | redis | redis-replica) kill_pid "$1" KILL ;;
    haproxy) kill_pid haproxy TERM ;;
    pg-replica) stop_pg_replica ;;
    *) die "unknown piece '$1' (one of: ${PIECES[*]})" ;;
  esac
}

piece_status() {
  local state=down addr
  case "$1" in
    shop1 | shop2 | shop3)
      addr="http://127.0.0.1:${SHOP_PORTS[$((${1#shop} - 1))]}"
      healthy "${addr##*:}" && state=up ;;
    haproxy) addr="http://127.0.0.1:$PORT (stats http://127.0.0.1:$STATS_PORT)"; port_open "$PORT" && state=up ;;
    redis) addr="redis://127.0.0.1:$REDIS_PORT"; redis_ping "$REDIS_PORT" && state=up ;;
    redis-replica) addr="redis://127.0.0.1:$REDIS_REPLICA_PORT"; redis_ping "$REDIS_REPLICA_PORT" && state=up ;;
    pg-replica) addr="postgres://127.0.0.1:$PG_REPLICA_PORT/$DB"
      [ "$(psql_replica 'select pg_is_in_recovery()')" = t ] && state=up ;;
  esac
  printf '%-14s %-5s %s\n' "$1" "$state" "$addr"
}

[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL runs as the postgres user)"
mkdir -p "$RUN" "$LOGS"

cmd="${1:-}"
case "$cmd" in
  up)
    rm -f "$LAB/sticky"
    [ "${2:-}" = --sticky ] && touch "$LAB/sticky"
    [ $# -le 1 ] || [ "${2:-}" = --sticky ] || die "usage: scripts/lab.sh up [--sticky]"
    have redis-server || die "redis-server is not installed (scripts/services.sh up installs it)"
    have haproxy || die "haproxy is not installed (apt-get install haproxy)"
    install_shop
    services_env up
    ensure_database
    # A fresh copy: an old one may lag beyond the WAL the primary kept.
    if [ "$(psql_replica 'select 1')" != 1 ]; then rm -rf "$(pg_dir)"; fi
    for piece in "${PIECES[@]}"; do start_piece "$piece"; done
    printf 'http://127.0.0.1:%s/\n' "$PORT"
    ;;
  kill | start)
    [ $# -eq 2 ] || die "usage: scripts/lab.sh $cmd NAME (one of: ${PIECES[*]})"
    services_env env
    "${cmd}_piece" "$2"
    ;;
  status)
    services_env env
    for piece in "${PIECES[@]}"; do piece_status "$piece"; done
    printf '%-14s %-5s %s\n' pg-primary shared "$PG_PRIMARY_URL (scripts/services.sh)"
    ;;
  down)
    services_env env
    for piece in haproxy shop3 shop2 shop1 redis-replica redis; do kill_pid "$piece" TERM; done
    stop_pg_replica
    ;;
  *)
    sed -n '2,/^set -E/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
