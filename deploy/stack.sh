#!/usr/bin/env bash
# The platform as separate processes on one machine, on PostgreSQL + Redis:
# user-service, streaming-service, revenue-service and gateway, each its own
# process with its own database, configured through the environment as in
# production.
#
#   deploy/stack.sh up [--dev-clock START@ANCHORxSPEED]   start, wait until ready
#   deploy/stack.sh stats                                  CPU seconds and peak memory per service
#   deploy/stack.sh down                                   stop gracefully
#
# With --dev-clock the streaming service runs on a compressed development
# clock (`stack dev-streaming`, for simulations; production never does).
#
# Settings (environment):
#   SSP_PROFILE      release (default) or debug: which cargo build to run
#   SSP_RUN_DIR      pids, logs, signing key (default ./data/stack)
#   SSP_PG           PostgreSQL server URL (default postgres://postgres@127.0.0.1:5432)
#   SSP_DB_PREFIX    databases <prefix>_users, _streaming, _revenue, dropped
#                    and created afresh by `up` (default ssp_stack)
#   SSP_REDIS        Redis URL (default redis://127.0.0.1:6379)
#   GATEWAY_ADDR     where the gateway listens (default 127.0.0.1:18080)
#   GATEWAY_METRICS_ADDR  where it serves /metrics (default 127.0.0.1:19464)
#   STREAMING_INSTANCES  streaming-service processes (default 1); instance i
#                    listens on 127.0.0.1:(50062 + 10·(i−1)) and is named
#                    streaming-service, streaming-service-2, …; the gateway
#                    and the revenue service balance over all of them (a
#                    static list; no Consul here)
#   ADMIN_EMAIL, ADMIN_PASSWORD   the operator-made admin (defaults below)
# Any other service setting (docs/configuration.md) passes through.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${SSP_PROFILE:-release}
run_dir=${SSP_RUN_DIR:-./data/stack}
pg=${SSP_PG:-postgres://postgres@127.0.0.1:5432}
db_prefix=${SSP_DB_PREFIX:-ssp_stack}
redis=${SSP_REDIS:-redis://127.0.0.1:6379}
export GATEWAY_ADDR=${GATEWAY_ADDR:-127.0.0.1:18080}
export GATEWAY_METRICS_ADDR=${GATEWAY_METRICS_ADDR:-127.0.0.1:19464}
export ADMIN_EMAIL=${ADMIN_EMAIL:-admin@example.com}
export ADMIN_PASSWORD=${ADMIN_PASSWORD:-admin-password}
# A short drain on SIGTERM: the balancers here probe every 0.5 s.
export GRPC_DRAIN_SECONDS=${GRPC_DRAIN_SECONDS:-1} GATEWAY_DRAIN_SECONDS=${GATEWAY_DRAIN_SECONDS:-1}
bin=target/$profile
instances=${STREAMING_INSTANCES:-1}

# The process names, edge first.
names() {
  echo gateway revenue-service
  ls "$run_dir"/streaming-service*.pid 2>/dev/null | xargs -rn1 basename | sed 's/\.pid$//' | sort -r
  echo user-service
}

down() {
  [ -d "$run_dir" ] || return 0
  # The edge first, the user service last; SIGTERM is a graceful stop (the
  # streaming service writes its counters back).
  for name in $(names); do
    pid_file=$run_dir/$name.pid
    [ -f "$pid_file" ] || continue
    pid=$(cat "$pid_file")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$pid_file"
  done
  echo "stack stopped"
}

stats() {
  printf '%-18s %12s %14s\n' service "CPU s" "peak RSS MiB"
  for name in $(names | tac); do
    pid_file=$run_dir/$name.pid
    [ -f "$pid_file" ] || continue
    pid=$(cat "$pid_file")
    [ -r "/proc/$pid/stat" ] || continue
    cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$pid/stat")
    hwm=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
    printf '%-18s %12s %14s\n' "$name" "$cpu" "$hwm"
  done
}

wait_for() { # name, command
  for _ in $(seq 1 300); do
    if eval "$2" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not become ready; its log:" >&2
  tail -n 30 "$run_dir/$1.log" >&2 || true
  return 1
}

start() { # name, command...
  local name=$1; shift
  "$@" >"$run_dir/$name.log" 2>&1 &
  echo $! >"$run_dir/$name.pid"
}

up() {
  local dev_clock=""
  while [ $# -gt 0 ]; do
    case $1 in
      --dev-clock) dev_clock=$2; shift 2 ;;
      *) echo "unknown option $1" >&2; exit 2 ;;
    esac
  done
  down >/dev/null
  local flag=""
  [ "$profile" = release ] && flag=--release
  cargo build $flag -q -p user-service -p streaming-service -p revenue-service -p gateway -p stack
  mkdir -p "$run_dir"
  for db in users streaming revenue; do
    psql "$pg/postgres" -q -c "DROP DATABASE IF EXISTS ${db_prefix}_$db WITH (FORCE)" -c "CREATE DATABASE ${db_prefix}_$db"
  done
  export SERVICE_CREDENTIAL=${SERVICE_CREDENTIAL:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
  export DATA_DIR=$run_dir
  export USER_GRPC_ADDR=127.0.0.1:50061 STREAMING_GRPC_ADDR=127.0.0.1:50062 REVENUE_GRPC_ADDR=127.0.0.1:50063
  export STREAMING_USER_SERVICE_URL=http://$USER_GRPC_ADDR REVENUE_USER_SERVICE_URL=http://$USER_GRPC_ADDR
  local streaming_urls="" i
  for i in $(seq 1 "$instances"); do
    streaming_urls="${streaming_urls:+$streaming_urls,}http://127.0.0.1:$((50062 + 10 * (i - 1)))"
  done
  export REVENUE_STREAMING_SERVICE_URL=$streaming_urls
  export GATEWAY_USER_SERVICE_URL=http://$USER_GRPC_ADDR GATEWAY_STREAMING_SERVICE_URL=$streaming_urls
  export GATEWAY_REVENUE_SERVICE_URL=http://$REVENUE_GRPC_ADDR
  export STREAMING_REDIS_PREFIX=${STREAMING_REDIS_PREFIX:-ssp-$(date +%s)}
  export REVENUE_REDIS_PREFIX=${REVENUE_REDIS_PREFIX:-$STREAMING_REDIS_PREFIX-reports}

  USER_DATABASE_URL=$pg/${db_prefix}_users USER_GENERATE_SIGNING_KEY=true \
    start user-service "$bin/user-service"
  wait_for user-service "grep -q 'listening' '$run_dir/user-service.log'"
  for i in $(seq 1 "$instances"); do
    local name=streaming-service
    [ "$i" -gt 1 ] && name=streaming-service-$i
    local command=("$bin/streaming-service")
    [ -n "$dev_clock" ] && command=("$bin/stack" dev-streaming --dev-clock "$dev_clock")
    STREAMING_DATABASE_URL=$pg/${db_prefix}_streaming STREAMING_REDIS_URL=$redis \
      STREAMING_GRPC_ADDR=127.0.0.1:$((50062 + 10 * (i - 1))) \
      start "$name" "${command[@]}"
    wait_for "$name" "grep -q 'listening' '$run_dir/$name.log'"
  done
  REVENUE_DATABASE_URL=$pg/${db_prefix}_revenue REVENUE_REDIS_URL=$redis \
    start revenue-service "$bin/revenue-service"
  wait_for revenue-service "grep -q 'listening' '$run_dir/revenue-service.log'"
  GATEWAY_REDIS_URL=$redis start gateway "$bin/gateway"
  wait_for gateway "curl -fsS http://$GATEWAY_ADDR/readyz"
  echo "stack up: gateway on http://$GATEWAY_ADDR (logs in $run_dir)"
}

case ${1:-} in
  up) shift; up "$@" ;;
  down) down ;;
  stats) stats ;;
  *) echo "usage: $0 up [--dev-clock START@ANCHORxSPEED] | stats | down" >&2; exit 2 ;;
esac
