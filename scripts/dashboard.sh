#!/usr/bin/env bash
# Renders docs/observability-dashboard.png: the panels of
# docs/grafana-dashboard.json computed from real scrapes of a running shop
# (not by Grafana, which cannot be installed here).
#
# Starts the shop with an admin listener (sessions and cache in a private
# redis-server, a database of its own on the test services' PostgreSQL
# primary and replica, see `scripts/services.sh env`), drives traffic, scrapes /metrics every few
# seconds and renders with scripts/dashboard/render.py. matplotlib, pinned
# in scripts/dashboard/requirements.txt, is installed from PyPI into
# .services/dashboard-venv the first time.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-docs/observability-dashboard.png}

venv=.services/dashboard-venv
req=scripts/dashboard/requirements.txt
if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
  command -v python3 >/dev/null || { echo "dashboard.sh: python3 is needed" >&2; exit 1; }
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/requirements.txt"
fi

eval "$(scripts/services.sh env)"
: "${PG_PRIMARY_URL:?scripts/services.sh env gave no PG_PRIMARY_URL; run scripts/services.sh up}"
command -v redis-server >/dev/null || { echo "dashboard.sh: redis-server is needed" >&2; exit 1; }
command -v psql >/dev/null || { echo "dashboard.sh: psql is needed" >&2; exit 1; }
cargo build --quiet -p shop --all-features
# A copy: another checkout sharing the target directory may rebuild it.
work=$(mktemp -d)
cp "${CARGO_TARGET_DIR:-target}/debug/shop" "$work/shop"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
shop_port=$(free_port)
admin_port=$(free_port)
redis_port=$(free_port)
# Data of its own, so that the price changes touch no test's data: a
# private redis-server, and a database of its own on the shared
# PostgreSQL primary (replicated to its replica).
db=dashboard_$$
with_db() { echo "${1%/*}/$db"; }
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
psql -q "$PG_PRIMARY_URL" -c "CREATE DATABASE $db"
shop_pid=
cleanup() {
  if [ -n "$shop_pid" ]; then kill "$shop_pid" 2>/dev/null || true; fi
  kill "$redis_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  psql -q "$PG_PRIMARY_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT
log=$work/shop.log
SHOP_ADDR=127.0.0.1:$shop_port ADMIN_ADDR=127.0.0.1:$admin_port COOKIE_SECURE=false \
  SESSION_STORE=redis REDIS_URL=redis://127.0.0.1:$redis_port REDIS_CLUSTER_URLS= CACHE=redis \
  DATABASE_URL=$(with_db "$PG_PRIMARY_URL") DATABASE_REPLICA_URLS=$(with_db "$PG_REPLICA_URL") \
  "$work/shop" >"$log" 2>&1 &
shop_pid=$!
for _ in $(seq 100); do
  grep -q "shop listening" "$log" && break
  kill -0 "$shop_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.2
done
grep -q "shop listening" "$log" || { echo "dashboard.sh: the shop did not start" >&2; cat "$log" >&2; exit 1; }

"$venv/bin/python" scripts/dashboard/render.py \
  "http://127.0.0.1:$shop_port" "http://127.0.0.1:$admin_port" "$out"
