#!/usr/bin/env bash
# Benchmark: settle one day of N videos (default 5,000,000) end to end: the
# counts are generated into a fresh streaming database (PostgreSQL), the
# user, streaming and revenue services and the gateway start as separate
# release processes, an admin queues the day through the gateway, and the
# revenue service pulls it over gRPC and writes it into its own PostgreSQL
# database. Prints the run record (rows, total, start and end), the wall
# time, and each service's peak memory. Then it settles the same day again
# (nothing changed) and prints that run and the ledger's transfers before
# and after it. Drops the databases after.
#
#   [BIN_DIR=target/release] bash bench/settle.sh [videos=5000000]
#
# BIN_DIR runs other builds of the services (bench/ledger.sh compares this
# commit with the same commit whose ledger posting is disabled).
set -euo pipefail
cd "$(dirname "$0")/.."
videos=${1:-5000000}
pg=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
n=$$
bin=${BIN_DIR:-./target/release}
if [ -z "${BIN_DIR:-}" ]; then
  cargo build --release --quiet -p user-service -p streaming-service -p revenue-service -p gateway
fi
for db in users streaming revenue; do psql "$pg/postgres" -qc "CREATE DATABASE bench_${db}_$n"; done
work=$(mktemp -d)
cleanup() {
  kill "${gw_pid:-}" "${rs_pid:-}" "${ss_pid:-}" "${us_pid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  for db in users streaming revenue; do psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS bench_${db}_$n WITH (FORCE)" || true; done
  rm -rf "$work" "${dir:-}"
}
trap cleanup EXIT
export SERVICE_CREDENTIAL=bench-credential RUST_LOG=warn DATA_DIR="$work"
USER_DATABASE_URL="$pg/bench_users_$n" USER_GRPC_ADDR=127.0.0.1:50171 USER_GENERATE_SIGNING_KEY=true \
  ADMIN_EMAIL=admin@example.com ADMIN_PASSWORD=bench-password "$bin/user-service" &
us_pid=$!
STREAMING_DATABASE_URL="$pg/bench_streaming_$n" STREAMING_GRPC_ADDR=127.0.0.1:50172 \
  STREAMING_USER_SERVICE_URL=http://127.0.0.1:50171 WRITEBACK_INTERVAL_SECONDS=3600 "$bin/streaming-service" &
ss_pid=$!
for _ in $(seq 100); do
  psql "$pg/bench_streaming_$n" -tAc "SELECT 1 FROM information_schema.tables WHERE table_name = 'watermarks'" | grep -q 1 && break
  sleep 0.2
done
echo "== generating $videos videos with counts on 2026-11-20 and 2026-11-21"
psql "$pg/bench_streaming_$n" -q -v ON_ERROR_STOP=1 -v videos="$videos" -f bench/generate-daily-counts.sql
REVENUE_DATABASE_URL="$pg/bench_revenue_$n" REVENUE_GRPC_ADDR=127.0.0.1:50173 \
  REVENUE_USER_SERVICE_URL=http://127.0.0.1:50171 REVENUE_STREAMING_SERVICE_URL=http://127.0.0.1:50172 \
  "$bin/revenue-service" &
rs_pid=$!
GATEWAY_ADDR=127.0.0.1:18191 GATEWAY_USER_SERVICE_URL=http://127.0.0.1:50171 \
  GATEWAY_STREAMING_SERVICE_URL=http://127.0.0.1:50172 GATEWAY_REVENUE_SERVICE_URL=http://127.0.0.1:50173 \
  AUTH_RATE_LIMIT_PER_MINUTE=0 "$bin/gateway" &
gw_pid=$!
base=http://127.0.0.1:18191
for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.2; done
token=$(curl -sf -X POST "$base/api/v1/auth/login" --json '{"email":"admin@example.com","password":"bench-password"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
# Queues 2026-11-21 and waits until its run is done; prints the run and
# the wall time.
settle_day() {
  start=$(date +%s.%N)
  run=$(curl -sf -X POST "$base/api/v1/admin/settlements" -H "authorization: Bearer $token" \
    --json '{"from":"2026-11-21","to":"2026-11-21"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_ids"][0])')
  while :; do
    body=$(curl -sf "$base/api/v1/admin/settlements/$run" -H "authorization: Bearer $token")
    status=$(echo "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    [ "$status" = succeeded ] || [ "$status" = failed ] && break
    sleep 0.5
  done
  end=$(date +%s.%N)
  echo "$body"
  echo "== wall time $(python3 -c "print(f'{$end - $start:.1f}')") s (queue to done, polled every 0.5 s)"
}
transfers() {
  psql "$pg/bench_revenue_$n" -tAc "SELECT COUNT(*) FROM ledger_transfers" 2>/dev/null || echo "no ledger"
}
sizes() {
  # daily_stats and ledger_transfers are partitioned (issue 19): their
  # sizes are their partitions'.
  psql "$pg/bench_revenue_$n" -tAc "SELECT string_agg(name || ' ' || pg_size_pretty(bytes), ', ') FROM ( \
    SELECT t AS name, SUM(pg_total_relation_size(c.oid)) AS bytes \
      FROM unnest(ARRAY['daily_stats', 'ledger_transfers']) t JOIN pg_class c \
        ON c.oid = to_regclass(t) OR c.oid IN (SELECT relid FROM pg_partition_tree(to_regclass(t))) \
      GROUP BY t \
    UNION ALL SELECT relname, pg_total_relation_size(oid) FROM pg_class \
      WHERE relname IN ('ledger_postings', 'rollup_video_stats', 'rollup_creator_stats')) t"
}
# The generation's dirty pages are flushed first (PostgreSQL's, then the
# kernel's), so that no run pays for writing what came before it.
psql "$pg/postgres" -qc CHECKPOINT
sync
echo "== machine: $(nproc) cores; settling 2026-11-21 ($bin)"
settle_day
echo "== tables with their indexes: $(sizes)"
for name in streaming-service:$ss_pid revenue-service:$rs_pid; do
  pid=${name#*:}
  echo "== ${name%%:*}: peak RSS $(awk '/VmHWM/{printf "%.1f MiB", $2/1024}' "/proc/$pid/status")"
done
# The settlement floor (issue 19): the rows the settlement just wrote (the
# day's daily_stats rows, its ledger transfers, the roll-up rows) exported in
# PostgreSQL's binary format, then loaded with a plain binary COPY into
# empty tables with the same columns and indexes (LIKE … INCLUDING ALL of
# the month's partitions of daily_stats and the ledger, and of the roll-up
# tables), in one
# transaction, timed from psql's start to its end. The roll-up tables hold
# only this day (the bench settles no other). The files are written and
# read by the PostgreSQL server: it must run on this machine (FLOOR=0
# skips the floor, e.g. for a remote BENCH_POSTGRES).
copy_floor() {
  dir=$(mktemp -d) && chmod 777 "$dir"
  local tables="daily_stats_p202611:day='2026-11-21' ledger_transfers_p202611:day='2026-11-21' rollup_video_stats:true rollup_creator_stats:true"
  local setup="" t
  for t in $tables; do
    local table=${t%%:*} filter=${t#*:}
    psql "$pg/bench_revenue_$n" -qc "COPY (SELECT * FROM $table WHERE $filter) TO '$dir/$table.bin' (FORMAT binary)"
    setup+="DROP TABLE IF EXISTS floor_$table; CREATE TABLE floor_$table (LIKE $table INCLUDING ALL);"
  done
  psql "$pg/bench_revenue_$n" -qc "$setup"
  psql "$pg/postgres" -qc CHECKPOINT
  sync
  echo "== plain binary COPY of the same rows into empty tables with the same indexes:"
  start=$(date +%s.%N)
  local args=(-v ON_ERROR_STOP=1 -c '\timing on' -c BEGIN)
  for t in $tables; do args+=(-c "COPY floor_${t%%:*} FROM '$dir/${t%%:*}.bin' (FORMAT binary)"); done
  args+=(-c COMMIT)
  psql "$pg/bench_revenue_$n" "${args[@]}" | grep -E '^(COPY|Time)' | paste -sd' '
  end=$(date +%s.%N)
  echo "== copy floor wall time $(python3 -c "print(f'{$end - $start:.1f}')") s"
  psql "$pg/bench_revenue_$n" -qc "$(for t in $tables; do echo "DROP TABLE floor_${t%%:*};"; done)"
  rm -rf "$dir"
  psql "$pg/postgres" -qc CHECKPOINT
  sync
}
[ "${FLOOR:-1}" = 0 ] || copy_floor
before=$(transfers)
echo "== settling 2026-11-21 again, nothing changed (ledger transfers before: $before)"
settle_day
echo "== ledger transfers after: $(transfers)"
