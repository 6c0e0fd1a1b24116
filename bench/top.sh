#!/usr/bin/env bash
# Benchmark: GET /api/v1/stats/top through the gateway over N settled daily
# rows (default 3,000,000, one day), the revenue service on PostgreSQL with
# its Redis read-aside cache. The rows are generated straight into a fresh
# revenue database (as a settlement would leave them); the first request
# computes the ranking from PostgreSQL (its time is printed), then wrk
# measures the steady state. Drops the database and the cache keys after.
#
#   bash bench/top.sh [rows=3000000] [duration=20s] [connections=16]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-3000000}
duration=${2:-20s}
connections=${3:-16}
pg=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
db=bench_revenue_$$
prefix=bench-top-$$
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 2; }
cargo build --release --quiet -p revenue-service -p gateway
psql "$pg/postgres" -qc "CREATE DATABASE $db"
work=$(mktemp -d)
cleanup() {
  kill "${gw_pid:-}" "${rs_pid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  redis-cli --scan --pattern "$prefix:*" | xargs -r redis-cli del >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export SERVICE_CREDENTIAL=bench-credential RUST_LOG=warn DATA_DIR="$work"
REVENUE_DATABASE_URL="$pg/$db" REVENUE_GRPC_ADDR=127.0.0.1:50183 REVENUE_REDIS_URL=redis://127.0.0.1:6379 \
  REVENUE_REDIS_PREFIX="$prefix" ./target/release/revenue-service &
rs_pid=$!
for _ in $(seq 100); do
  psql "$pg/$db" -tAc "SELECT 1 FROM information_schema.tables WHERE table_name = 'settlement_leases'" | grep -q 1 && break
  sleep 0.2
done
echo "== generating $rows daily rows for 2026-11-21"
psql "$pg/$db" -q -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE IF NOT EXISTS daily_stats_p202611 PARTITION OF daily_stats
  FOR VALUES FROM ('2026-11-01') TO ('2026-12-01');
INSERT INTO daily_stats (day, video_id, creator_id, title, views, watch_seconds, ad_views,
                         video_amount, ad_amount, total_amount, rate_card_version)
  SELECT '2026-11-21', g, 1 + g % 1000, 'video ' || g, 1 + (g::bigint * 7919) % 100000,
         60 * (1 + (g::bigint * 7919) % 1000), g % 50, 1, 0, 1, 1
  FROM generate_series(1, $rows) g;
ANALYZE;
SQL
GATEWAY_ADDR=127.0.0.1:18192 GATEWAY_REVENUE_SERVICE_URL=http://127.0.0.1:50183 \
  GATEWAY_REQUEST_TIMEOUT_MS=60000 ./target/release/gateway &
gw_pid=$!
url="http://127.0.0.1:18192/api/v1/stats/top?metric=views&period=day&date=2026-11-21"
for _ in $(seq 100); do curl -sf http://127.0.0.1:18192/healthz >/dev/null && break; sleep 0.2; done
echo "== first request (computed from PostgreSQL, then cached): $(curl -sf -o /dev/null -w '%{time_total}' "$url") s"
echo "== machine: $(nproc) cores; wrk -t1 -c$connections -d$duration"
wrk -t1 -c"$connections" -d"$duration" --latency "$url"
for name in revenue-service:$rs_pid gateway:$gw_pid; do
  pid=${name#*:}
  echo "== ${name%%:*}: peak RSS $(awk '/VmHWM/{printf "%.1f MiB", $2/1024}' "/proc/$pid/status")"
done
