# Sourced by scripts/bench.sh and scripts/profile.sh (after they define
# `die`): the processes they start are stopped when they exit, and the
# private Redis each of them measures against.

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

# A redis-server of our own on 127.0.0.1:PORT, without persistence; sets
# REDIS_PID and REDIS_URL. `setting` names the variable that picks the port.
start_redis() { # port log-file setting
  local port=$1 log=$2 setting=$3
  if redis-cli -p "$port" ping >/dev/null 2>&1; then
    die "port $port already answers PING; set $setting to a free port"
  fi
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --daemonize no --logfile "$log" &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  for _ in $(seq 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -p "$port" ping >/dev/null || die "the Redis on port $port did not start"
  export REDIS_URL="redis://127.0.0.1:$port"
}
