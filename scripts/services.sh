#!/usr/bin/env bash
# Installs (Debian 12, as root, via apt / npm) and runs on loopback every server
# the test-suite needs. See scripts/README.md.
#
#   scripts/services.sh up       install what is missing, start what is not running,
#                                wait until everything answers, then print `env`
#   scripts/services.sh env      print `export NAME=value` lines
#   scripts/services.sh status   one line per service: up/down + URL (exit 1 if any is down)
#   scripts/services.sh down     stop what this script started (data is kept)
#   scripts/services.sh pg-primary-stop|pg-primary-start|pg-replica-stop|pg-replica-start
#
# All state (data dirs, logs, pid files, certificates, node_modules) lives in
# $REPO/.services, except PostgreSQL data when the postgres user cannot reach it
# (see pg_base_dir below).
#
# Notes on what was checked on Debian 12 (bookworm):
#  * Debian's redis-server 7.0 package is built with TLS (it links libssl3 and accepts
#    tls-port / tls-cert-file ...), and its redis-cli supports --tls and rediss:// URIs,
#    so no other package is needed for the TLS instance.
#  * dynalite 4.0.0 (pinned in scripts/package-lock.json) depends on classic-level, a
#    native addon loaded at start-up, whose npm tarball ships prebuilt binaries for
#    linux-x64/arm64 (found by node-gyp-build), so `npm ci` compiles nothing and
#    downloads nothing but registry tarballs. dynalite 4 declares node >= 20 but also
#    runs on Debian's Node.js 18 (npm only warns); 3.x cannot bind to 127.0.0.1 only.
#  * Debian's memcached 1.6.18 speaks the meta protocol (mg/ms/md/mn) the Memcached
#    store uses; two instances run in the foreground under our pid files, without UDP.
set -Eeuo pipefail
umask 022
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$SCRIPT_DIR/.." && pwd -P)"

# Ports, the ACL user, the database name, where the state and certificates
# live: shared with the tests' harness (the test-support crate reads the same
# file), so the two cannot disagree.
SETTINGS="$REPO/tests/support/services.env"
[ -r "$SETTINGS" ] || { printf '[services] ERROR: %s is missing\n' "$SETTINGS" >&2; exit 1; }
# shellcheck source=../tests/support/services.env
. "$SETTINGS"
read -r -a CLUSTER_PORTS <<<"$REDIS_CLUSTER_PORTS"
read -r -a MEMCACHED_NODE_PORTS <<<"$MEMCACHED_PORTS"
read -r -a SENTINEL_DATA_PORTS <<<"$SENTINEL_REDIS_PORTS"
read -r -a SENTINEL_NODE_PORTS <<<"$SENTINEL_PORTS"

SVC="$REPO/$SERVICES_DIR_NAME"
RUN="$SVC/run"
LOGS="$SVC/logs"
STATE="$SVC/state"
TLS_DIR="$SVC/$TLS_DIR_NAME"
TIMEOUT="${SERVICES_TIMEOUT:-60}"
REPO_HASH="$(printf '%s' "$REPO" | sha256sum | cut -c1-12)"
# Short directory outside the repo: for PostgreSQL data when postgres cannot reach
# $REPO/.services, and for the MariaDB socket when the repo path is too long for a
# unix socket path (108 bytes).
ALT_DIR="/var/tmp/stateful-services-$REPO_HASH"

# Variables of the caller that would redirect our client tools elsewhere.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS \
      PGSSLMODE PGDATA PGCONNECT_TIMEOUT REDISCLI_AUTH MYSQL_HOST MYSQL_TCP_PORT \
      MYSQL_PWD 2>/dev/null || true

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'printf "[services] ERROR: command failed (exit %s) at line %s: %s\n" "$?" "$LINENO" "$BASH_COMMAND" >&2' ERR

tail_log() {
  local f
  for f in "$@"; do
    if [ -s "$f" ]; then
      printf -- '----- last lines of %s -----\n' "$f" >&2
      tail -n 25 "$f" >&2 || true
    fi
  done
}

# wait_until DESCRIPTION [--pid PID] [LOGFILE...] -- COMMAND [ARGS...]
# Runs COMMAND every 0.2 s until it succeeds. After $TIMEOUT s, or as soon as
# process PID has died, prints the log tails and exits 1.
wait_until() {
  if ! wait_quietly "$@"; then
    log "$WAIT_FAILURE"
    tail_log "${WAIT_LOGS[@]}"
    exit 1
  fi
}

# Same as wait_until, but returns 1 (with the reason in WAIT_FAILURE) instead of exiting.
WAIT_FAILURE=""
WAIT_LOGS=()
wait_quietly() {
  local desc=$1 pid=""; shift
  if [ "${1:-}" = "--pid" ]; then pid=$2; shift 2; fi
  WAIT_LOGS=()
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do WAIT_LOGS+=("$1"); shift; done
  shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@"; do
    if [ -n "$pid" ] && ! proc_running "$pid"; then
      WAIT_FAILURE="$desc: the process (pid $pid) exited"
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      WAIT_FAILURE="timed out after ${TIMEOUT}s waiting for $desc"
      return 1
    fi
    sleep 0.2
  done
}

# Like wait_until but returns 1 on timeout instead of exiting.
try_until() {
  local secs=$1; shift
  local deadline=$((SECONDS + secs))
  until "$@"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

have() { command -v "$1" >/dev/null 2>&1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

who_listens() {
  if have ss; then ss -ltnpH "sport = :$1" 2>/dev/null | sed 's/^/    /' >&2 || true; fi
}

port_taken_die() {
  log "port 127.0.0.1:$1 is taken by a process this checkout did not start ($2):"
  who_listens "$1"
  die "stop it (e.g. 'scripts/services.sh down' in the checkout that started it) and run again"
}

proc_running() { # PID
  local st
  [ -r "/proc/$1/stat" ] || return 1
  st="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [ "$st" != "Z" ] && [ "$st" != "X" ]
}

pidfile_pid() { # PIDFILE -> prints pid if alive
  local pid
  [ -s "$1" ] || return 1
  pid="$(head -n1 "$1" 2>/dev/null | tr -dc '0-9')"
  [ -n "$pid" ] && proc_running "$pid" && printf '%s' "$pid"
}

# ours PIDFILE COMM: the pid file names a live process with that command name.
ours() {
  local pid comm
  pid="$(pidfile_pid "$1")" || return 1
  comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
  [ "$comm" = "$2" ]
}

stop_pidfile() { # PIDFILE COMM NAME
  local pid
  if ours "$1" "$2"; then
    pid="$(pidfile_pid "$1")"
    log "stopping $3 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! try_until 30 eval "! proc_running $pid"; then
      log "$3 did not stop after 30s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
      try_until 10 eval "! proc_running $pid" || true
    fi
  fi
  rm -f "$1"
}

# Servers must not keep any file descriptor of ours: a daemon holding the
# caller's stdout pipe (`eval "$(scripts/services.sh up)"`), a CI runner's pipe or
# our lock file would make whoever waits on it hang.
close_fds() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd=${fd##*/}
    if [[ $fd =~ ^[0-9]+$ ]] && [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
  return 0
}

# run_clean LOGFILE COMMAND...: run COMMAND in the foreground from /, stdin from
# /dev/null, output appended to LOGFILE, no other inherited descriptor.
run_clean() {
  local logf=$1; shift
  ( cd / && close_fds && exec "$@" </dev/null >>"$logf" 2>&1 )
}

# spawn LOGFILE COMMAND...: same, in the background in a new session; prints its pid.
spawn() {
  local logf=$1; shift
  ( cd / && close_fds && exec setsid "$@" </dev/null >>"$logf" 2>&1 ) &
  printf '%s' "$!"
}

# ---------------------------------------------------------------------------
# packages
# ---------------------------------------------------------------------------
APT_UPDATED=""
apt_install() {
  [ "$(id -u)" -eq 0 ] || die "missing packages ($*) and not root: run as root to install them"
  mkdir -p "$LOGS"
  if [ -z "$APT_UPDATED" ]; then
    log "apt-get update"
    apt-get update >>"$LOGS/apt.log" 2>&1 || { tail_log "$LOGS/apt.log"; die "apt-get update failed"; }
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" \
    >>"$LOGS/apt.log" 2>&1 || { tail_log "$LOGS/apt.log"; die "apt-get install $* failed"; }
}

pg_bin_dir() { # newest installed PostgreSQL server
  local d v best="" bestv=0
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/pg_basebackup" ] && [ -x "$d/psql" ] || continue
    v="$(basename "$(dirname "$d")" | tr -dc 0-9)"
    if [ -n "$v" ] && [ "$v" -gt "$bestv" ]; then best="$d"; bestv="$v"; fi
  done
  [ -n "$best" ] && printf '%s' "$best"
}

ensure_packages() {
  local need=()
  have redis-server || need+=(redis-server)
  have redis-cli || need+=(redis-tools)
  pg_bin_dir >/dev/null || need+=(postgresql)
  { have mariadbd && have mariadb-install-db; } || need+=(mariadb-server)
  have mariadb || need+=(mariadb-client)
  have node || need+=(nodejs)
  have npm || need+=(npm)
  have haproxy || need+=(haproxy)
  # headless browser for the shop's browser test (driven by playwright-core from npm)
  [ -x /usr/bin/chromium ] || need+=(chromium)
  have openssl || need+=(openssl)
  [ -s /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
  have setsid || need+=(util-linux)
  have memcached || need+=(memcached)
  if [ "${#need[@]}" -gt 0 ]; then apt_install "${need[@]}"; fi
  PG_BIN="$(pg_bin_dir)" || die "no PostgreSQL server found under /usr/lib/postgresql after install"
}

# ---------------------------------------------------------------------------
# Redis (single node, TLS, cluster)
# ---------------------------------------------------------------------------
rcli() { timeout 5 redis-cli -h 127.0.0.1 "$@" 2>/dev/null; }
redis_ping() { [ "$(rcli -p "$1" ping)" = "PONG" ]; }
tls_cli() { rcli -p "$REDIS_TLS_PORT" --tls --cacert "$TLS_DIR/ca.crt" "$@"; }
redis_tls_ping() {
  [ "$(tls_cli ping)" = "PONG" ] &&
    [ "$(tls_cli --user "$REDIS_ACL_USER" --pass "$REDIS_ACL_PASS" ping)" = "PONG" ]
}

ensure_redis() {
  local pf="$RUN/redis.pid"
  if redis_ping "$REDIS_PORT"; then
    if ours "$pf" redis-server; then log "redis :$REDIS_PORT already running (ours)"
    else log "redis :$REDIS_PORT already running (not started by this checkout, reused)"; fi
    return 0
  fi
  port_open "$REDIS_PORT" && port_taken_die "$REDIS_PORT" "it does not answer Redis PING"
  mkdir -p "$SVC/redis"
  log "starting redis on :$REDIS_PORT"
  run_clean "$LOGS/redis.log" redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
    --save "" --appendonly no --dir "$SVC/redis" --pidfile "$pf" --logfile "$LOGS/redis.log" ||
    { tail_log "$LOGS/redis.log"; die "redis-server failed to start"; }
  wait_until "redis on :$REDIS_PORT" "$LOGS/redis.log" -- redis_ping "$REDIS_PORT"
}

tls_certs_ok() {
  [ -s "$TLS_DIR/ca.crt" ] && [ -s "$TLS_DIR/ca.key" ] && [ -s "$TLS_DIR/server.crt" ] && [ -s "$TLS_DIR/server.key" ] || return 1
  openssl x509 -in "$TLS_DIR/ca.crt" -noout -checkend 86400 >/dev/null 2>&1 || return 1
  openssl x509 -in "$TLS_DIR/server.crt" -noout -checkend 86400 >/dev/null 2>&1 || return 1
  openssl verify -CAfile "$TLS_DIR/ca.crt" "$TLS_DIR/server.crt" >/dev/null 2>&1
}

# Self-signed CA + server certificate for 127.0.0.1 / ::1 / localhost.
# Returns 0 if new certificates were made.
ensure_tls_certs() {
  tls_certs_ok && return 1
  log "generating TLS CA and server certificate in $TLS_DIR"
  rm -rf "$TLS_DIR"
  mkdir -p "$TLS_DIR"
  local L="$LOGS/openssl.log"
  {
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.crt" -subj "/CN=stateful test CA" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" &&
    openssl req -new -newkey rsa:2048 -nodes -sha256 \
      -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" -subj "/CN=localhost" &&
    printf '%s\n' \
      "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost" \
      "subjectKeyIdentifier=hash" \
      "authorityKeyIdentifier=keyid,issuer" >"$TLS_DIR/server.ext" &&
    openssl x509 -req -sha256 -days 3650 -in "$TLS_DIR/server.csr" \
      -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" -CAcreateserial -CAserial "$TLS_DIR/ca.srl" \
      -extfile "$TLS_DIR/server.ext" -out "$TLS_DIR/server.crt"
  } >>"$L" 2>&1 || { tail_log "$L"; die "openssl failed to create the test certificates"; }
  chmod 600 "$TLS_DIR/ca.key" "$TLS_DIR/server.key"
  chmod 644 "$TLS_DIR/ca.crt" "$TLS_DIR/server.crt"
  rm -f "$TLS_DIR/server.csr"
  return 0
}

conf_quote() { # quote a value for redis.conf
  local s=${1//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}

ensure_redis_tls() {
  local pf="$RUN/redis-tls.pid" dir="$SVC/redis-tls" conf
  local new_certs=0
  if ensure_tls_certs; then new_certs=1; fi
  if ours "$pf" redis-server; then
    if [ "$new_certs" = 1 ]; then
      stop_pidfile "$pf" redis-server "redis-tls (new certificates)"
    elif redis_tls_ping; then
      log "redis-tls :$REDIS_TLS_PORT already running (ours)"
      return 0
    else
      wait_until "redis-tls on :$REDIS_TLS_PORT" "$LOGS/redis-tls.log" -- redis_tls_ping
      return 0
    fi
  fi
  port_open "$REDIS_TLS_PORT" && port_taken_die "$REDIS_TLS_PORT" "redis-tls"
  mkdir -p "$dir"
  conf="$dir/redis.conf"
  {
    echo "# generated by scripts/services.sh"
    echo "bind 127.0.0.1"
    echo "port 0"
    echo "tls-port $REDIS_TLS_PORT"
    echo "tls-cert-file $(conf_quote "$TLS_DIR/server.crt")"
    echo "tls-key-file $(conf_quote "$TLS_DIR/server.key")"
    echo "tls-ca-cert-file $(conf_quote "$TLS_DIR/ca.crt")"
    echo "tls-auth-clients no"
    echo "daemonize yes"
    echo "pidfile $(conf_quote "$pf")"
    echo "logfile $(conf_quote "$LOGS/redis-tls.log")"
    echo "dir $(conf_quote "$dir")"
    echo 'save ""'
    echo "appendonly no"
    echo "user $REDIS_ACL_USER on >$REDIS_ACL_PASS ~* &* +@all"
  } >"$conf"
  log "starting redis-tls on :$REDIS_TLS_PORT"
  run_clean "$LOGS/redis-tls.log" redis-server "$conf" ||
    { tail_log "$LOGS/redis-tls.log"; die "redis-server (TLS) failed to start"; }
  wait_until "redis-tls on :$REDIS_TLS_PORT" "$LOGS/redis-tls.log" -- redis_tls_ping
}

cluster_pidfile() { printf '%s' "$RUN/redis-cluster-$1.pid"; }
cluster_logs() { local p; for p in "${CLUSTER_PORTS[@]}"; do printf '%s\n' "$LOGS/redis-cluster-$p.log"; done; }

cluster_ok() {
  local p info repl replicas=0
  for p in "${CLUSTER_PORTS[@]}"; do
    info="$(rcli -p "$p" cluster info)" || return 1
    [[ $info == *"cluster_state:ok"* ]] || return 1
    [[ $info == *"cluster_slots_assigned:16384"* ]] || return 1
    [[ $info == *"cluster_slots_ok:16384"* ]] || return 1
    [[ $info == *"cluster_known_nodes:${#CLUSTER_PORTS[@]}"* ]] || return 1
    repl="$(rcli -p "$p" info replication)" || return 1
    if [[ $repl == *"role:slave"* ]]; then
      [[ $repl == *"master_link_status:up"* ]] || return 1
      replicas=$((replicas + 1))
    fi
  done
  [ "$replicas" -eq $(( ${#CLUSTER_PORTS[@]} / 2 )) ]
}

cluster_all_ping() { local p; for p in "${CLUSTER_PORTS[@]}"; do redis_ping "$p" || return 1; done; }

stop_cluster() {
  local p
  for p in "${CLUSTER_PORTS[@]}"; do stop_pidfile "$(cluster_pidfile "$p")" redis-server "redis-cluster :$p"; done
}

ensure_redis_cluster() {
  local p all_ours=1 any_ours=0 logs=()
  mapfile -t logs < <(cluster_logs)
  for p in "${CLUSTER_PORTS[@]}"; do
    if ours "$(cluster_pidfile "$p")" redis-server; then any_ours=1
    else
      all_ours=0
      port_open "$p" && port_taken_die "$p" "redis-cluster node"
    fi
  done
  if [ "$all_ours" = 1 ]; then
    if try_until 20 cluster_ok; then
      log "redis-cluster :${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[-1]} already running (ours)"
      return 0
    fi
    log "redis-cluster is running but not healthy: recreating it"
    tail_log "${logs[@]}"
  elif [ "$any_ours" = 1 ]; then
    log "redis-cluster is only partly running: recreating it"
  fi
  stop_cluster
  local addrs=()
  for p in "${CLUSTER_PORTS[@]}"; do
    # Nodes keep nothing on disk but nodes.conf: start from a clean slate.
    rm -rf "$SVC/redis-cluster/$p"
    mkdir -p "$SVC/redis-cluster/$p"
    : >"$LOGS/redis-cluster-$p.log"
    run_clean "$LOGS/redis-cluster-$p.log" redis-server --daemonize yes --bind 127.0.0.1 --port "$p" \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
      --save "" --appendonly no --dir "$SVC/redis-cluster/$p" \
      --pidfile "$(cluster_pidfile "$p")" --logfile "$LOGS/redis-cluster-$p.log" ||
      { tail_log "$LOGS/redis-cluster-$p.log"; die "redis-server (cluster node :$p) failed to start"; }
    addrs+=("127.0.0.1:$p")
  done
  log "starting redis-cluster on :${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[-1]}"
  wait_until "redis-cluster nodes to answer PING" "${logs[@]}" -- cluster_all_ping
  timeout "$TIMEOUT" redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
    </dev/null >>"$LOGS/redis-cluster-create.log" 2>&1 ||
    { tail_log "$LOGS/redis-cluster-create.log"; die "redis-cli --cluster create failed"; }
  wait_until "redis-cluster state ok on all nodes" "$LOGS/redis-cluster-create.log" "${logs[@]}" -- cluster_ok
}

# ---------------------------------------------------------------------------
# Redis primary + replica watched by three Sentinels
# ---------------------------------------------------------------------------
# The primary and the replica start in the order of SENTINEL_REDIS_PORTS; after
# a failover their roles are swapped, which is fine: the Sentinels name the
# current primary, and the group counts as healthy either way.
sentinel_data_pidfile() { printf '%s' "$RUN/redis-sentinel-data-$1.pid"; }
sentinel_pidfile() { printf '%s' "$RUN/redis-sentinel-$1.pid"; }
sentinel_logs() {
  local p
  for p in "${SENTINEL_DATA_PORTS[@]}"; do printf '%s\n' "$LOGS/redis-sentinel-data-$p.log"; done
  for p in "${SENTINEL_NODE_PORTS[@]}"; do printf '%s\n' "$LOGS/redis-sentinel-$p.log"; done
}
sentinel_urls() {
  local p out=""
  for p in "${SENTINEL_NODE_PORTS[@]}"; do out+="${out:+,}redis://127.0.0.1:$p"; done
  printf '%s' "$out"
}
sentinel_field() { # SENTINEL_PORT FIELD: a field of SENTINEL MASTER <name>
  rcli -p "$1" sentinel master "$SENTINEL_MASTER_NAME" | sed -n "/^$2\$/{n;p}"
}

# Every Sentinel names the same one of our two nodes as the master, knows the
# replica and its two peers (only then can they agree on a failover), and that
# node says it is a master with its replica connected.
sentinel_ok() {
  local s port master="" repl
  for s in "${SENTINEL_NODE_PORTS[@]}"; do
    port="$(rcli -p "$s" sentinel get-master-addr-by-name "$SENTINEL_MASTER_NAME" | sed -n 2p)"
    [ -n "$port" ] || return 1
    [ -z "$master" ] || [ "$port" = "$master" ] || return 1
    master=$port
    [[ " ${SENTINEL_DATA_PORTS[*]} " == *" $port "* ]] || return 1
    [ "$(sentinel_field "$s" num-slaves)" = "1" ] || return 1
    [ "$(sentinel_field "$s" num-other-sentinels)" = "2" ] || return 1
  done
  repl="$(rcli -p "$master" info replication)" || return 1
  [[ $repl == *"role:master"* && $repl == *"connected_slaves:1"* ]]
}

sentinel_all_ours() {
  local p
  for p in "${SENTINEL_DATA_PORTS[@]}"; do ours "$(sentinel_data_pidfile "$p")" redis-server || return 1; done
  for p in "${SENTINEL_NODE_PORTS[@]}"; do ours "$(sentinel_pidfile "$p")" redis-server || return 1; done
}

stop_sentinel_group() {
  local p
  for p in "${SENTINEL_NODE_PORTS[@]}"; do stop_pidfile "$(sentinel_pidfile "$p")" redis-server "redis-sentinel :$p"; done
  for p in "${SENTINEL_DATA_PORTS[@]}"; do stop_pidfile "$(sentinel_data_pidfile "$p")" redis-server "redis (Sentinel group) :$p"; done
}

# Reuses a healthy group this checkout started; otherwise stops what is left of
# ours and starts the group afresh (nothing in it is kept on disk).
ensure_redis_sentinel() {
  local p dir conf logs=()
  local primary=${SENTINEL_DATA_PORTS[0]} replica=${SENTINEL_DATA_PORTS[1]}
  mapfile -t logs < <(sentinel_logs)
  if sentinel_all_ours; then
    if try_until 20 sentinel_ok; then
      log "redis-sentinel :${SENTINEL_NODE_PORTS[*]} (redis :${SENTINEL_DATA_PORTS[*]}) already running (ours)"
      return 0
    fi
    log "the Sentinel group is running but not healthy: recreating it"
    tail_log "${logs[@]}"
  fi
  stop_sentinel_group
  for p in "${SENTINEL_DATA_PORTS[@]}" "${SENTINEL_NODE_PORTS[@]}"; do
    if port_open "$p"; then port_taken_die "$p" "the Sentinel group"; fi
  done
  log "starting redis :$primary, its replica :$replica and redis-sentinel :${SENTINEL_NODE_PORTS[*]}"
  for p in "$primary" "$replica"; do
    dir="$SVC/redis-sentinel/data-$p"
    rm -rf "$dir"
    mkdir -p "$dir"
    : >"$LOGS/redis-sentinel-data-$p.log"
    local follow=()
    if [ "$p" = "$replica" ]; then follow=(--replicaof 127.0.0.1 "$primary"); fi
    run_clean "$LOGS/redis-sentinel-data-$p.log" redis-server --daemonize yes --bind 127.0.0.1 --port "$p" \
      --save "" --appendonly no --dir "$dir" "${follow[@]}" \
      --pidfile "$(sentinel_data_pidfile "$p")" --logfile "$LOGS/redis-sentinel-data-$p.log" ||
      { tail_log "$LOGS/redis-sentinel-data-$p.log"; die "redis-server :$p (Sentinel group) failed to start"; }
  done
  for p in "${SENTINEL_NODE_PORTS[@]}"; do
    # Sentinels rewrite their configuration as they learn: each starts from a
    # fresh one.
    dir="$SVC/redis-sentinel/sentinel-$p"
    rm -rf "$dir"
    mkdir -p "$dir"
    conf="$dir/sentinel.conf"
    printf '%s\n' \
      "port $p" \
      "bind 127.0.0.1" \
      "daemonize yes" \
      "pidfile $(sentinel_pidfile "$p")" \
      "logfile $LOGS/redis-sentinel-$p.log" \
      "dir $dir" \
      "sentinel monitor $SENTINEL_MASTER_NAME 127.0.0.1 $primary 2" \
      "sentinel down-after-milliseconds $SENTINEL_MASTER_NAME 2000" \
      "sentinel failover-timeout $SENTINEL_MASTER_NAME 10000" \
      "sentinel parallel-syncs $SENTINEL_MASTER_NAME 1" >"$conf"
    : >"$LOGS/redis-sentinel-$p.log"
    run_clean "$LOGS/redis-sentinel-$p.log" redis-server "$conf" --sentinel ||
      { tail_log "$LOGS/redis-sentinel-$p.log"; die "redis-sentinel :$p failed to start"; }
  done
  wait_until "the Sentinel group (redis :${SENTINEL_DATA_PORTS[*]}, sentinels :${SENTINEL_NODE_PORTS[*]})" \
    "${logs[@]}" -- sentinel_ok
}

# ---------------------------------------------------------------------------
# PostgreSQL primary + streaming replica
# ---------------------------------------------------------------------------
PG_BIN=""
PG_BASE=""

ensure_postgres_user() {
  id -u postgres >/dev/null 2>&1 && return 0
  log "creating system user postgres"
  useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres ||
    die "could not create the postgres user"
}

# Where the clusters live. PostgreSQL refuses to run as root, so it runs as the
# postgres user, which must be able to reach its data directories. When the repo
# is not traversable by postgres (e.g. a clone under /root, mode 700), the data go
# to /var/tmp/stateful-services-<hash of the repo path>/pg instead; the choice is
# remembered in .services/state/pg_base.
pg_base_dir() {
  if runuser -u postgres -- test -x "$SVC" -a -r "$SVC" 2>/dev/null; then
    printf '%s' "$SVC/pg"
  else
    printf '%s' "$ALT_DIR/pg"
  fi
}

pg_as() { (cd / && runuser -u postgres -- "$@"); }
pg_primary_dir() { printf '%s' "$PG_BASE/primary"; }
pg_replica_dir() { printf '%s' "$PG_BASE/replica"; }

pg_psql() { # PORT DB SQL
  PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d "$2" -tAc "$3" 2>/dev/null
}
pg_ready() { [ "$(pg_psql "$1" postgres 'select 1')" = "1" ]; }

pg_running() { # DATADIR
  [ -f "$1/postmaster.pid" ] || return 1
  pg_as "$PG_BIN/pg_ctl" -D "$1" status >/dev/null 2>&1
}

# A postmaster.pid left by a killed server whose pid now belongs to some other
# process would make the server refuse to start: remove it.
pg_clear_stale_pid() { # DATADIR
  local f="$1/postmaster.pid" pid
  [ -f "$f" ] || return 0
  pid="$(head -n1 "$f" | tr -dc 0-9)"
  # a live postmaster has the data directory as its working directory
  if [ -n "$pid" ] && proc_running "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "postgres" ] &&
     [ "$(readlink -f "/proc/$pid/cwd" 2>/dev/null)" = "$(readlink -f "$1")" ]; then
    return 0
  fi
  log "removing stale $f"
  rm -f "$f"
}

pg_start() { # NAME DATADIR
  local name=$1 dir=$2 logf="$LOGS/$1.log"
  pg_clear_stale_pid "$dir"
  log "starting $name ($dir)"
  printf '\n==== %s start %s\n' "$name" "$(date -u '+%F %T')" >>"$logf"
  run_clean "$logf" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir" -w -t "$TIMEOUT" start
}

pg_stop() { # NAME DATADIR
  local name=$1 dir=$2
  if pg_running "$dir"; then
    log "stopping $name"
    pg_as "$PG_BIN/pg_ctl" -D "$dir" -w -t "$TIMEOUT" -m fast stop >>"$LOGS/$name.log" 2>&1 ||
      { tail_log "$LOGS/$name.log"; die "pg_ctl stop $name failed"; }
  else
    log "$name is not running"
  fi
}

pg_sysid() { "$PG_BIN/pg_controldata" -D "$1" 2>/dev/null | sed -n 's/^Database system identifier: *//p'; }

pg_datadir_valid() { # DATADIR
  [ -f "$1/PG_VERSION" ] && [ -f "$1/global/pg_control" ] &&
    [ "$(cat "$1/PG_VERSION")" = "$(basename "$(dirname "$PG_BIN")")" ]
}

pg_init_primary() {
  local P R
  P="$(pg_primary_dir)"; R="$(pg_replica_dir)"
  log "initialising PostgreSQL primary in $P"
  local d
  for d in "$R" "$P"; do
    if pg_running "$d"; then pg_as "$PG_BIN/pg_ctl" -D "$d" -w -m immediate stop >/dev/null 2>&1 || true; fi
  done
  rm -rf "$P" "$R"
  pg_as "$PG_BIN/initdb" -D "$P" -U postgres --auth=trust -E UTF8 --no-locale -N \
    >>"$LOGS/pg-primary.log" 2>&1 || { tail_log "$LOGS/pg-primary.log"; die "initdb failed"; }
  cat >>"$P/postgresql.conf" <<EOF

# ---- scripts/services.sh ----
listen_addresses = '127.0.0.1'
port = $PG_PRIMARY_PORT
unix_socket_directories = ''
max_connections = 200
wal_level = replica
max_wal_senders = 10
wal_keep_size = '1GB'
hot_standby = on
hot_standby_feedback = on
# a replica reconnects quickly after the primary was restarted by a test
wal_retrieve_retry_interval = '500ms'
# test data only: nothing is lost when a process is killed, only on an OS crash
fsync = off
EOF
}

pg_init_replica() {
  local R
  R="$(pg_replica_dir)"
  log "creating PostgreSQL replica in $R (pg_basebackup)"
  pg_stop pg-replica "$R" 2>/dev/null || true
  rm -rf "$R"
  pg_as "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U postgres -D "$R" \
    -R -X stream -c fast -N >>"$LOGS/pg-replica.log" 2>&1 ||
    { tail_log "$LOGS/pg-replica.log"; die "pg_basebackup failed"; }
  cat >>"$R/postgresql.conf" <<EOF

# ---- scripts/services.sh: replica ----
port = $PG_REPLICA_PORT
EOF
}

pg_replica_streaming() {
  [ "$(pg_psql "$PG_REPLICA_PORT" postgres 'select pg_is_in_recovery()')" = "t" ] &&
    [ "$(pg_psql "$PG_REPLICA_PORT" postgres "select count(*) from pg_stat_wal_receiver where status = 'streaming'")" = "1" ]
}

PG_CHECK_TOKEN=""
pg_replica_sees_token() {
  [ "$(pg_psql "$PG_REPLICA_PORT" postgres "select v from services_check where id = 1")" = "$PG_CHECK_TOKEN" ]
}

ensure_pg_layout() {
  ensure_postgres_user
  PG_BASE="$(pg_base_dir)"
  mkdir -p "$STATE"
  printf '%s\n' "$PG_BASE" >"$STATE/pg_base"
  if [ "$PG_BASE" != "$SVC/pg" ]; then
    mkdir -p "$(dirname "$PG_BASE")"
    chmod 755 "$(dirname "$PG_BASE")"
  fi
  mkdir -p "$PG_BASE"
  chown postgres:postgres "$PG_BASE"
  chmod 700 "$PG_BASE"
}

ensure_postgres() {
  local delay="${PG_REPLICA_DELAY_MS:-0}" P R
  [[ $delay =~ ^[0-9]+$ ]] || die "PG_REPLICA_DELAY_MS must be a number of milliseconds (got '$delay')"
  ensure_pg_layout
  P="$(pg_primary_dir)"; R="$(pg_replica_dir)"

  # --- primary
  if pg_running "$P" && pg_ready "$PG_PRIMARY_PORT"; then
    log "pg-primary :$PG_PRIMARY_PORT already running (ours)"
  else
    if ! pg_running "$P" && port_open "$PG_PRIMARY_PORT"; then port_taken_die "$PG_PRIMARY_PORT" "pg-primary"; fi
    pg_datadir_valid "$P" || pg_init_primary
    if ! pg_running "$P"; then
      if ! pg_start pg-primary "$P"; then
        log "pg-primary did not start from its existing data: re-initialising it"
        tail_log "$LOGS/pg-primary.log"
        pg_as "$PG_BIN/pg_ctl" -D "$P" -m immediate stop >/dev/null 2>&1 || true
        pg_init_primary
        pg_start pg-primary "$P" || { tail_log "$LOGS/pg-primary.log"; die "pg-primary failed to start"; }
      fi
    fi
    wait_until "pg-primary on :$PG_PRIMARY_PORT" "$LOGS/pg-primary.log" -- pg_ready "$PG_PRIMARY_PORT"
  fi
  if [ "$(pg_psql "$PG_PRIMARY_PORT" postgres "select 1 from pg_database where datname = '$DATABASE_NAME'")" != "1" ]; then
    pg_psql "$PG_PRIMARY_PORT" postgres "create database $DATABASE_NAME owner postgres" >/dev/null ||
      die "could not create database $DATABASE_NAME on pg-primary"
  fi
  pg_psql "$PG_PRIMARY_PORT" postgres "create table if not exists services_check (id int primary key, v text)" >/dev/null ||
    die "could not create table services_check on pg-primary"

  # --- replica
  if pg_running "$R" && pg_datadir_valid "$R" && [ "$(pg_sysid "$R")" = "$(pg_sysid "$P")" ]; then
    log "pg-replica :$PG_REPLICA_PORT already running (ours)"
  else
    if ! pg_running "$R" && port_open "$PG_REPLICA_PORT"; then port_taken_die "$PG_REPLICA_PORT" "pg-replica"; fi
    if ! pg_datadir_valid "$R" || [ ! -f "$R/standby.signal" ] || [ "$(pg_sysid "$R")" != "$(pg_sysid "$P")" ]; then
      pg_init_replica
    fi
    if ! pg_running "$R" && ! pg_start pg-replica "$R"; then
      log "pg-replica did not start from its existing data: re-creating it"
      tail_log "$LOGS/pg-replica.log"
      pg_init_replica
      pg_start pg-replica "$R" || { tail_log "$LOGS/pg-replica.log"; die "pg-replica failed to start"; }
    fi
  fi
  wait_until "pg-replica on :$PG_REPLICA_PORT" "$LOGS/pg-replica.log" -- pg_ready "$PG_REPLICA_PORT"
  if ! try_until "$TIMEOUT" pg_replica_streaming; then
    log "pg-replica is not streaming from the primary: re-creating it"
    tail_log "$LOGS/pg-replica.log"
    pg_init_replica
    pg_start pg-replica "$R" || { tail_log "$LOGS/pg-replica.log"; die "pg-replica failed to start"; }
    wait_until "pg-replica to stream from the primary" "$LOGS/pg-replica.log" "$LOGS/pg-primary.log" -- pg_replica_streaming
  fi

  # --- apply delay (tests change it at run time the same way)
  pg_psql "$PG_REPLICA_PORT" postgres "alter system set recovery_min_apply_delay = '${delay}ms'" >/dev/null &&
    pg_psql "$PG_REPLICA_PORT" postgres "select pg_reload_conf()" >/dev/null ||
    die "could not set recovery_min_apply_delay on pg-replica"

  # --- replication check: write on the primary, read it back on the replica
  PG_CHECK_TOKEN="$$-$RANDOM-$(date +%s%N)"
  pg_psql "$PG_PRIMARY_PORT" postgres \
    "insert into services_check values (1, '$PG_CHECK_TOKEN') on conflict (id) do update set v = excluded.v" >/dev/null ||
    die "could not write to pg-primary"
  local saved=$TIMEOUT
  TIMEOUT=$((TIMEOUT + delay / 1000))
  wait_until "a write on pg-primary to show up on pg-replica" "$LOGS/pg-replica.log" -- pg_replica_sees_token
  TIMEOUT=$saved
  log "pg replication ok (apply delay ${delay}ms)"
}

# ---------------------------------------------------------------------------
# MariaDB
# ---------------------------------------------------------------------------
mysql_q() { # PORT SQL
  timeout 10 mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$1" -u root --password= \
    --connect-timeout=3 -N -B -e "$2" 2>/dev/null
}
mysql_ping() { [ "$(mysql_q "$1" 'select 1')" = "1" ]; }

mysql_sock() {
  local s="$SVC/mariadb/mysqld.sock"
  if [ "${#s}" -gt 100 ]; then s="$ALT_DIR/mysqld.sock"; mkdir -p "$ALT_DIR"; fi
  printf '%s' "$s"
}

mysql_start_own() {
  local data="$SVC/mariadb/data" pf="$RUN/mariadb.pid" logf="$LOGS/mariadb.log"
  if [ ! -d "$data/mysql" ]; then
    log "initialising MariaDB in $data"
    rm -rf "$data"
    mkdir -p "$data"
    mariadb-install-db --no-defaults --datadir="$data" --user=root \
      --auth-root-authentication-method=normal --skip-test-db >>"$logf" 2>&1 ||
      { tail_log "$logf"; die "mariadb-install-db failed"; }
  fi
  rm -f "$pf"
  log "starting mariadb on :$MYSQL_OWN_PORT"
  local pid
  pid="$(spawn "$logf" mariadbd --no-defaults --datadir="$data" --user=root \
    --bind-address=127.0.0.1 --port="$MYSQL_OWN_PORT" --socket="$(mysql_sock)" \
    --pid-file="$pf" --log-error="$logf" --skip-name-resolve \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --max-connections=300 --innodb-buffer-pool-size=128M \
    --innodb-flush-log-at-trx-commit=2)"
  printf '%s\n' "$pid" >"$pf"
  wait_quietly "mariadb on :$MYSQL_OWN_PORT" --pid "$pid" "$logf" -- mysql_ping "$MYSQL_OWN_PORT"
}

ensure_mysql() {
  local port pf="$RUN/mariadb.pid"
  if mysql_ping "$MYSQL_MACHINE_PORT"; then
    port=$MYSQL_MACHINE_PORT
    log "mariadb :$port already running (not started by this checkout, reused)"
  elif ours "$pf" mariadbd && mysql_ping "$MYSQL_OWN_PORT"; then
    port=$MYSQL_OWN_PORT
    log "mariadb :$port already running (ours)"
  else
    ours "$pf" mariadbd && stop_pidfile "$pf" mariadbd mariadb
    port_open "$MYSQL_OWN_PORT" && port_taken_die "$MYSQL_OWN_PORT" "mariadb"
    port=$MYSQL_OWN_PORT
    if ! mysql_start_own; then
      log "$WAIT_FAILURE"
      tail_log "$LOGS/mariadb.log"
      log "mariadb did not start from its existing data: re-initialising it"
      stop_pidfile "$pf" mariadbd mariadb
      rm -rf "$SVC/mariadb/data"
      mysql_start_own || { log "$WAIT_FAILURE"; tail_log "$LOGS/mariadb.log"; die "mariadb failed to start on :$MYSQL_OWN_PORT"; }
    fi
  fi
  mysql_q "$port" "create database if not exists $DATABASE_NAME" >/dev/null ||
    die "could not create database $DATABASE_NAME on mariadb :$port"
  mkdir -p "$STATE"
  printf '%s\n' "$port" >"$STATE/mysql_port"
}

# ---------------------------------------------------------------------------
# DynamoDB emulator (dynalite, from npm)
# ---------------------------------------------------------------------------
NPM_DIR="$SVC/npm"

ensure_npm_deps() {
  local stamp want
  [ -f "$SCRIPT_DIR/package.json" ] && [ -f "$SCRIPT_DIR/package-lock.json" ] ||
    die "scripts/package.json and scripts/package-lock.json are required"
  want="$(cat "$SCRIPT_DIR/package.json" "$SCRIPT_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)"
  stamp="$NPM_DIR/.installed"
  if [ -f "$NPM_DIR/node_modules/dynalite/cli.js" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  log "npm ci (dynalite, playwright-core) into $NPM_DIR"
  mkdir -p "$NPM_DIR"
  cp "$SCRIPT_DIR/package.json" "$SCRIPT_DIR/package-lock.json" "$NPM_DIR/"
  (cd "$NPM_DIR" && npm ci --no-audit --no-fund --update-notifier=false) </dev/null >>"$LOGS/npm.log" 2>&1 ||
    { tail_log "$LOGS/npm.log"; die "npm ci failed in $NPM_DIR"; }
  printf '%s\n' "$want" >"$stamp"
}

dynamodb_ok() {
  timeout 5 node -e '
    const req = require("http").request({host: "127.0.0.1", port: +process.argv[1], method: "POST", path: "/",
      headers: {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.ListTables",
        "X-Amz-Date": "20240101T000000Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0"}},
      res => { let b = ""; res.on("data", d => b += d); res.on("end", () => process.exit(b.includes("TableNames") ? 0 : 1)); });
    req.on("error", () => process.exit(1));
    req.end("{}");' "$DYNAMODB_PORT" >/dev/null 2>&1
}

ensure_dynamodb() {
  local pf="$RUN/dynalite.pid" pid installed
  ensure_npm_deps
  installed="$(cat "$NPM_DIR/.installed")"
  if ours "$pf" node && dynamodb_ok && [ "$(cat "$RUN/dynalite.installed" 2>/dev/null)" = "$installed" ]; then
    log "dynalite :$DYNAMODB_PORT already running (ours)"
    return 0
  fi
  # not answering, or started before the npm packages changed
  if ours "$pf" node; then stop_pidfile "$pf" node dynalite; fi
  port_open "$DYNAMODB_PORT" && port_taken_die "$DYNAMODB_PORT" "dynalite"
  log "starting dynalite on :$DYNAMODB_PORT"
  pid="$(spawn "$LOGS/dynalite.log" node "$NPM_DIR/node_modules/dynalite/cli.js" \
    --host 127.0.0.1 --port "$DYNAMODB_PORT" --createTableMs 0 --deleteTableMs 0 --updateTableMs 0)"
  printf '%s\n' "$pid" >"$pf"
  printf '%s\n' "$installed" >"$RUN/dynalite.installed"
  wait_until "dynalite on :$DYNAMODB_PORT" --pid "$pid" "$LOGS/dynalite.log" -- dynamodb_ok
}

# ---------------------------------------------------------------------------
# Memcached (two nodes)
# ---------------------------------------------------------------------------
memcached_pidfile() { printf '%s' "$RUN/memcached-$1.pid"; }
memcached_ping() { # PORT
  ( exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'mn\r\n' >&3 && IFS= read -r -t 2 line <&3 &&
    [ "$line" = $'MN\r' ] ) 2>/dev/null
}
memcached_urls() { local IFS=,; local u=(); local p; for p in "${MEMCACHED_NODE_PORTS[@]}"; do u+=("127.0.0.1:$p"); done; printf '%s' "${u[*]}"; }

ensure_memcached() {
  local p pf pid user=memcache
  id -u "$user" >/dev/null 2>&1 || user=root
  for p in "${MEMCACHED_NODE_PORTS[@]}"; do
    pf="$(memcached_pidfile "$p")"
    if ours "$pf" memcached && memcached_ping "$p"; then
      log "memcached :$p already running (ours)"
      continue
    fi
    if ours "$pf" memcached; then stop_pidfile "$pf" memcached "memcached :$p"; fi
    port_open "$p" && port_taken_die "$p" "memcached"
    log "starting memcached on :$p"
    pid="$(spawn "$LOGS/memcached-$p.log" memcached -l 127.0.0.1 -p "$p" -U 0 -m 64 -t 2 -u "$user")"
    printf '%s\n' "$pid" >"$pf"
    wait_until "memcached on :$p" --pid "$pid" "$LOGS/memcached-$p.log" -- memcached_ping "$p"
  done
}

# ---------------------------------------------------------------------------
# env / status
# ---------------------------------------------------------------------------
mysql_port_now() {
  local p
  p="$(cat "$STATE/mysql_port" 2>/dev/null || true)"
  if [ -n "$p" ]; then printf '%s' "$p"; return 0; fi
  if have mariadb && mysql_ping "$MYSQL_MACHINE_PORT"; then printf '%s' "$MYSQL_MACHINE_PORT"
  else printf '%s' "$MYSQL_OWN_PORT"; fi
}

resolve_paths() { # without side effects
  PG_BIN="$(pg_bin_dir || true)"
  PG_BASE="$(cat "$STATE/pg_base" 2>/dev/null || true)"
  if [ -z "$PG_BASE" ]; then
    if id -u postgres >/dev/null 2>&1 && [ -d "$SVC" ]; then PG_BASE="$(pg_base_dir)"; else PG_BASE="$SVC/pg"; fi
  fi
}

cluster_urls() {
  local p out=""
  for p in "${CLUSTER_PORTS[@]}"; do out+="${out:+,}redis://127.0.0.1:$p"; done
  printf '%s' "$out"
}

print_env() {
  resolve_paths
  local kv=(
    "REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
    "REDIS_TLS_URL=rediss://127.0.0.1:$REDIS_TLS_PORT"
    "REDIS_TLS_CA=$TLS_DIR/ca.crt"
    "REDIS_TLS_ACL_URL=rediss://$REDIS_ACL_USER:$REDIS_ACL_PASS@127.0.0.1:$REDIS_TLS_PORT"
    "REDIS_CLUSTER_URLS=$(cluster_urls)"
    "PG_PRIMARY_URL=postgres://postgres@127.0.0.1:$PG_PRIMARY_PORT/$DATABASE_NAME"
    "PG_REPLICA_URL=postgres://postgres@127.0.0.1:$PG_REPLICA_PORT/$DATABASE_NAME"
    "PG_BIN=$PG_BIN"
    "PG_REPLICA_DATA=$(pg_replica_dir)"
    "MYSQL_URL=mysql://root@127.0.0.1:$(mysql_port_now)/$DATABASE_NAME"
    "DYNAMODB_ENDPOINT=http://127.0.0.1:$DYNAMODB_PORT"
    "AWS_ACCESS_KEY_ID=$AWS_TEST_ACCESS_KEY_ID"
    "AWS_SECRET_ACCESS_KEY=$AWS_TEST_SECRET_ACCESS_KEY"
    "AWS_REGION=$AWS_TEST_REGION"
    "SERVICES_DIR=$SVC"
    "MEMCACHED_URLS=$(memcached_urls)"
    "REDIS_SENTINEL_URLS=$(sentinel_urls)"
    "REDIS_SENTINEL_MASTER=$SENTINEL_MASTER_NAME"
  )
  local e v
  for e in "${kv[@]}"; do
    v="${e#*=}"
    # plain values stay readable; anything else is single-quoted for the shell
    if [[ ! $v =~ ^[A-Za-z0-9_./:@,=+%-]*$ ]]; then v="'${v//\'/\'\\\'\'}'"; fi
    printf 'export %s=%s\n' "${e%%=*}" "$v"
  done
}

status() {
  resolve_paths
  local down=0 p ok note
  local foreign="not started by this checkout"
  row() { # NAME OK URL NOTE
    printf '%-14s %-5s %s%s\n' "$1" "$([ "$2" = 1 ] && echo up || echo down)" "$3" "${4:+  ($4)}"
    [ "$2" = 1 ] || down=1
  }
  have redis-cli || { echo "redis-cli is not installed: run 'scripts/services.sh up'"; return 1; }

  ok=0; note=""
  if redis_ping "$REDIS_PORT"; then ok=1; ours "$RUN/redis.pid" redis-server || note=$foreign; fi
  row redis "$ok" "redis://127.0.0.1:$REDIS_PORT" "$note"

  ok=0; note=""
  if [ -s "$TLS_DIR/ca.crt" ] && redis_tls_ping; then ok=1; fi
  if ! ours "$RUN/redis-tls.pid" redis-server && port_open "$REDIS_TLS_PORT"; then note="port in use, $foreign"; fi
  row redis-tls "$ok" "rediss://127.0.0.1:$REDIS_TLS_PORT" "$note"

  ok=0; note=""
  cluster_ok && ok=1
  for p in "${CLUSTER_PORTS[@]}"; do
    if ! ours "$(cluster_pidfile "$p")" redis-server && port_open "$p"; then note=$foreign; fi
  done
  row redis-cluster "$ok" "$(cluster_urls)" "$note"

  ok=0; note=""
  sentinel_ok && ok=1
  if ! sentinel_all_ours && port_open "${SENTINEL_NODE_PORTS[0]}"; then note=$foreign; fi
  row redis-sentinel "$ok" "$(sentinel_urls) ($SENTINEL_MASTER_NAME)" "$note"

  ok=0; note=""
  if [ -n "$PG_BIN" ] && pg_ready "$PG_PRIMARY_PORT"; then ok=1; pg_running "$(pg_primary_dir)" || note=$foreign; fi
  row pg-primary "$ok" "postgres://postgres@127.0.0.1:$PG_PRIMARY_PORT/$DATABASE_NAME" "$note"

  ok=0; note=""
  if [ -n "$PG_BIN" ] && pg_ready "$PG_REPLICA_PORT"; then
    ok=1
    if pg_replica_streaming; then note="streaming"; else note="NOT streaming"; fi
    note+=", apply delay $(pg_psql "$PG_REPLICA_PORT" postgres 'show recovery_min_apply_delay')"
    pg_running "$(pg_replica_dir)" || note+=", $foreign"
  fi
  row pg-replica "$ok" "postgres://postgres@127.0.0.1:$PG_REPLICA_PORT/$DATABASE_NAME" "$note"

  p="$(mysql_port_now)"
  ok=0; note=""
  if have mariadb && mysql_ping "$p"; then
    ok=1
    { [ "$p" = "$MYSQL_OWN_PORT" ] && ours "$RUN/mariadb.pid" mariadbd; } || note=$foreign
  fi
  row mariadb "$ok" "mysql://root@127.0.0.1:$p/$DATABASE_NAME" "$note"

  ok=0; note=""
  if have node && dynamodb_ok; then ok=1; ours "$RUN/dynalite.pid" node || note=$foreign; fi
  row dynalite "$ok" "http://127.0.0.1:$DYNAMODB_PORT" "$note"

  for p in "${MEMCACHED_NODE_PORTS[@]}"; do
    ok=0; note=""
    if memcached_ping "$p"; then ok=1; ours "$(memcached_pidfile "$p")" memcached || note=$foreign; fi
    row "memcached" "$ok" "127.0.0.1:$p" "$note"
  done

  return "$down"
}

# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------
take_lock() {
  mkdir -p "$RUN" "$LOGS" "$STATE"
  exec 9>"$RUN/lock"
  flock -w "$TIMEOUT" 9 || die "another 'scripts/services.sh' is running in $REPO (lock $RUN/lock)"
}

# Fail before touching anything when a port we need is held by a process this
# checkout did not start (the ensure_* functions check again, one by one).
preflight_ports() {
  local p
  ensure_postgres_user
  PG_BASE="$(pg_base_dir)"
  if ! ours "$RUN/redis-tls.pid" redis-server && port_open "$REDIS_TLS_PORT"; then port_taken_die "$REDIS_TLS_PORT" redis-tls; fi
  for p in "${CLUSTER_PORTS[@]}"; do
    if ! ours "$(cluster_pidfile "$p")" redis-server && port_open "$p"; then port_taken_die "$p" "redis-cluster node"; fi
  done
  if ! pg_running "$(pg_primary_dir)" && port_open "$PG_PRIMARY_PORT"; then port_taken_die "$PG_PRIMARY_PORT" pg-primary; fi
  if ! pg_running "$(pg_replica_dir)" && port_open "$PG_REPLICA_PORT"; then port_taken_die "$PG_REPLICA_PORT" pg-replica; fi
  if ! ours "$RUN/dynalite.pid" node && port_open "$DYNAMODB_PORT"; then port_taken_die "$DYNAMODB_PORT" dynalite; fi
  for p in "${MEMCACHED_NODE_PORTS[@]}"; do
    if ! ours "$(memcached_pidfile "$p")" memcached && port_open "$p"; then port_taken_die "$p" memcached; fi
  done
  for p in "${SENTINEL_DATA_PORTS[@]}"; do
    if ! ours "$(sentinel_data_pidfile "$p")" redis-server && port_open "$p"; then port_taken_die "$p" "the Sentinel group"; fi
  done
  for p in "${SENTINEL_NODE_PORTS[@]}"; do
    if ! ours "$(sentinel_pidfile "$p")" redis-server && port_open "$p"; then port_taken_die "$p" "the Sentinel group"; fi
  done
  return 0
}

cmd_up() {
  local t0=$SECONDS
  [ "$(id -u)" -eq 0 ] || log "warning: not running as root (installing packages and running PostgreSQL as postgres need root)"
  take_lock
  ensure_packages
  # npm ci is mostly network time: let it run while the servers start
  preflight_ports
  ensure_npm_deps </dev/null >/dev/null 2>>"$LOGS/npm.log" &
  local npm_job=$!
  ensure_redis
  ensure_redis_tls
  ensure_redis_cluster
  ensure_redis_sentinel
  ensure_postgres
  ensure_mysql
  wait "$npm_job" || { tail_log "$LOGS/npm.log"; die "installing the npm packages failed"; }
  ensure_dynamodb
  ensure_memcached
  log "all services up ($((SECONDS - t0))s)"
  print_env
}

cmd_down() {
  take_lock
  resolve_paths
  local p
  for p in "${MEMCACHED_NODE_PORTS[@]}"; do stop_pidfile "$(memcached_pidfile "$p")" memcached "memcached :$p"; done
  stop_pidfile "$RUN/dynalite.pid" node dynalite
  stop_pidfile "$RUN/mariadb.pid" mariadbd mariadb
  if [ -n "$PG_BIN" ]; then
    pg_stop pg-replica "$(pg_replica_dir)"
    pg_stop pg-primary "$(pg_primary_dir)"
  fi
  stop_cluster
  stop_sentinel_group
  stop_pidfile "$RUN/redis-tls.pid" redis-server redis-tls
  stop_pidfile "$RUN/redis.pid" redis-server redis
  rm -f "$STATE/mysql_port"
  log "stopped everything this script started (data kept in $SVC)"
}

cmd_pg() { # start|stop primary|replica
  local action=$1 which=$2 dir
  mkdir -p "$LOGS"
  resolve_paths
  [ -n "$PG_BIN" ] || die "PostgreSQL is not installed: run 'scripts/services.sh up' first"
  if [ "$which" = primary ]; then dir="$(pg_primary_dir)"; else dir="$(pg_replica_dir)"; fi
  [ -f "$dir/PG_VERSION" ] || die "no data directory $dir: run 'scripts/services.sh up' first"
  if [ "$action" = stop ]; then
    pg_stop "pg-$which" "$dir"
  elif pg_running "$dir"; then
    log "pg-$which is already running"
  else
    pg_start "pg-$which" "$dir" || { tail_log "$LOGS/pg-$which.log"; die "pg-$which failed to start"; }
  fi
}

usage() {
  cat >&2 <<EOF
usage: scripts/services.sh up|down|status|env
       scripts/services.sh pg-primary-stop|pg-primary-start|pg-replica-stop|pg-replica-start
EOF
  exit 2
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  env) print_env ;;
  status) status || exit 1 ;;
  pg-primary-stop) cmd_pg stop primary ;;
  pg-primary-start) cmd_pg start primary ;;
  pg-replica-stop) cmd_pg stop replica ;;
  pg-replica-start) cmd_pg start replica ;;
  *) usage ;;
esac
