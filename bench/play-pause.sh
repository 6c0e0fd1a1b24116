#!/usr/bin/env bash
# Benchmark: play then pause through the gateway, the streaming service on
# PostgreSQL counting on Redis, load from wrk on the same machine (loopback
# only).
#
#   bash bench/play-pause.sh [duration=30s] [connections=16] [videos=200] [wrk threads=2]
#
# Builds release binaries, creates fresh databases, starts the three
# services, uploads the videos, runs wrk with bench/play-pause.lua (every
# session played, then paused), prints its report, the pairs/s, the
# machine's idle share and Redis's and wrk's CPU during the run, each
# service's CPU time and peak memory, and the counted views and watched
# seconds after a write-back; then stops everything and drops the
# databases. Needs `wrk`, PostgreSQL on 127.0.0.1:5432 and Redis on
# 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-30s}
connections=${2:-16}
videos=${3:-200}
threads=${4:-2}
pg=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
redis=${BENCH_REDIS:-redis://127.0.0.1:6379}
users_db=bench_users_$$
streaming_db=bench_streaming_$$
prefix=bench$$

command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 2; }
cargo build --release --quiet -p user-service -p streaming-service -p gateway

work=$(mktemp -d)
psql "$pg/postgres" -qc "CREATE DATABASE $users_db" -c "CREATE DATABASE $streaming_db"
cleanup() {
  kill "${gw_pid:-}" "${ss_pid:-}" "${us_pid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $users_db WITH (FORCE)" \
    -c "DROP DATABASE IF EXISTS $streaming_db WITH (FORCE)" || true
  redis-cli -u "$redis" --scan --pattern "$prefix:*" | xargs -r -n 1000 redis-cli -u "$redis" del >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

export SERVICE_CREDENTIAL=bench-credential RUST_LOG=warn
USER_DATABASE_URL="$pg/$users_db" USER_GRPC_ADDR=127.0.0.1:50151 DATA_DIR="$work" \
  USER_GENERATE_SIGNING_KEY=true ./target/release/user-service &
us_pid=$!
STREAMING_DATABASE_URL="$pg/$streaming_db" STREAMING_GRPC_ADDR=127.0.0.1:50152 \
  STREAMING_USER_SERVICE_URL=http://127.0.0.1:50151 STREAMING_REDIS_URL="$redis" \
  STREAMING_REDIS_PREFIX="$prefix" WRITEBACK_INTERVAL_SECONDS=3600 ./target/release/streaming-service &
ss_pid=$!
GATEWAY_ADDR=127.0.0.1:18181 GATEWAY_USER_SERVICE_URL=http://127.0.0.1:50151 \
  GATEWAY_STREAMING_SERVICE_URL=http://127.0.0.1:50152 GATEWAY_TRUSTED_PROXIES=127.0.0.1 \
  AUTH_RATE_LIMIT_PER_MINUTE=0 ./target/release/gateway &
gw_pid=$!

base=http://127.0.0.1:18181
for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.2; done
curl -sf -X POST "$base/api/v1/auth/signup" \
  --json '{"email":"creator@example.com","password":"bench-password","display_name":"Creator","role":"creator"}' >/dev/null
token=$(curl -sf -X POST "$base/api/v1/auth/login" --json '{"email":"creator@example.com","password":"bench-password"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
for i in $(seq "$videos"); do
  curl -sf -X POST "$base/api/v1/videos" -H "authorization: Bearer $token" \
    --json "{\"title\":\"Video $i\",\"duration_seconds\":600}" >/dev/null
done

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; wrk -t$threads -c$connections -d$duration, $videos videos"
# Machine idle (idle + iowait) from /proc/stat; Redis's CPU from its own
# INFO (it may not be a local process); wrk's from `times` in its subshell.
cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6}' /proc/stat; }
redis_cpu() { redis-cli -u "$redis" INFO cpu 2>/dev/null | tr -d '\r' |
  awk -F: '/^used_cpu_(user|sys):/{s += $2} END{if (NR) printf "%.2f", s}'; }
read -r total0 idle0 < <(cpu_ticks); redis0=$(redis_cpu)
(VIDEOS=$videos wrk -t"$threads" -c"$connections" -d"$duration" --latency \
  -s bench/play-pause.lua "$base"; times >"$work/wrk-times.txt") | tee "$work/wrk.txt"
read -r total1 idle1 < <(cpu_ticks); redis1=$(redis_cpu)
awk '/Requests\/sec/{printf "== play+pause pairs/s: %.0f\n", $2/2}' "$work/wrk.txt"
echo "== during wrk: machine idle $(awk -v t=$((total1 - total0)) -v i=$((idle1 - idle0)) 'BEGIN{printf "%.0f %%", 100*i/t}'), redis-server CPU $(awk -v a="${redis0:-}" -v b="${redis1:-}" 'BEGIN{if (a == "" || b == "") print "—"; else printf "%.1f s", b - a}'), wrk CPU (user sys) $(tail -1 "$work/wrk-times.txt")"

for name in user-service:$us_pid streaming-service:$ss_pid gateway:$gw_pid; do
  pid=${name#*:}
  ticks=$(awk '{print $14+$15}' "/proc/$pid/stat")
  echo "== ${name%%:*}: CPU $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", t/hz}') s, peak RSS $(awk '/VmHWM/{printf "%.1f MiB", $2/1024}' "/proc/$pid/status")"
done
kill -TERM "$ss_pid"; wait "$ss_pid" || true   # graceful stop writes the counters back
echo "== counted (written back): $(psql "$pg/$streaming_db" -tAc 'SELECT SUM(views) || '"' views, '"' || SUM(watch_seconds) || '"' watch seconds'"' FROM daily_counts')"
