#!/usr/bin/env bash
# Benchmark (issue 19): does the write-back's refresh of the cumulative
# counts (`views_before`, every few seconds for the videos written) stay as
# fast with a long history as with none? For each history length (1 day,
# then DAYS days ending on 2026-11-20), a fresh streaming database: the
# service migrates it, VIDEOS videos get a row a day with their exact sums
# before it (generated in SQL, each month in its partition), then
# `refresh_bench` times 40 batches of BATCH videos, each one transaction
# that re-zeroes the sums of the videos' 2026-11-20 rows (as a fresh row
# of the day has them) and refreshes them
# (`daily_counts::refresh_cumulative`). Prints each length's p50 / p99 and
# the ratio of the p50s.
#
#   bash bench/writeback-history.sh [VIDEOS=50000] [DAYS=365] [BATCH=1000]
#
# Needs PostgreSQL (as the tests do); builds the release binaries; drops
# its databases after.
set -euo pipefail
cd "$(dirname "$0")/.."
videos=${1:-50000}
days=${2:-365}
batch=${3:-1000}
pg=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
cargo build --release --quiet -p streaming-service --bin streaming-service --example refresh_bench
work=$(mktemp -d)
dbs=()
cleanup() {
  kill "${ss_pid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  for db in "${dbs[@]}"; do psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true; done
  rm -rf "$work"
}
trap cleanup EXIT
export SERVICE_CREDENTIAL=bench-credential RUST_LOG=warn DATA_DIR="$work"
p50s=()
for length in 1 "$days"; do
  db=bench_refresh_$$_$length
  dbs+=("$db")
  psql "$pg/postgres" -qc "CREATE DATABASE $db"
  STREAMING_DATABASE_URL="$pg/$db" STREAMING_GRPC_ADDR=127.0.0.1:50163 WRITEBACK_INTERVAL_SECONDS=3600 \
    ./target/release/streaming-service &
  ss_pid=$!
  for _ in $(seq 100); do
    psql "$pg/$db" -tAc "SELECT 1 FROM information_schema.tables WHERE table_name = 'watermarks'" | grep -q 1 && break
    sleep 0.2
  done
  kill "$ss_pid"
  wait "$ss_pid" 2>/dev/null || true
  ss_pid=
  t0=$(date +%s)
  # Video v has 1 + v % 100 views and v % 7 ad views a day: its sums
  # before the k-th day (k from 0) are k times those.
  psql "$pg/$db" -q -v ON_ERROR_STOP=1 <<SQL
DO \$\$
DECLARE m date;
BEGIN
  FOR m IN SELECT generate_series(date_trunc('month', date '2026-11-20' - ($length - 1)), date '2026-11-01', interval '1 month')::date LOOP
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF daily_counts FOR VALUES FROM (%L) TO (%L)',
      'daily_counts_p' || to_char(m, 'YYYYMM'), m, (m + interval '1 month')::date);
  END LOOP;
END \$\$;
INSERT INTO videos (id, creator_id, title, description, duration_seconds, created_at)
  SELECT g, 1 + g % 1000, 'video ' || g, '', 600, now() FROM generate_series(1, $videos) g;
INSERT INTO daily_counts (video_id, day, views, watch_seconds, ad_views, views_before, ad_views_before)
  SELECT v, date '2026-11-20' - ($length - 1) + k, 1 + v % 100, 60 * (1 + v % 100), v % 7,
         k * (1 + v % 100), k * (v % 7)
  FROM generate_series(0, $length - 1) k, generate_series(1, $videos) v
  ORDER BY 2, 1;
VACUUM ANALYZE;
SQL
  rows=$(psql "$pg/$db" -tAc "SELECT COUNT(*) FROM daily_counts")
  echo "== $length day(s) of history: $rows rows of daily_counts, filled in $(($(date +%s) - t0)) s"
  psql "$pg/postgres" -qc CHECKPOINT
  out=$(./target/release/examples/refresh_bench "$pg/$db" 2026-11-20 "$videos" "$batch")
  echo "   $out"
  # The refreshed rows are exact: each video's sums before 2026-11-20.
  wrong=$(psql "$pg/$db" -tAc "SELECT COUNT(*) FROM daily_counts WHERE day = '2026-11-20'
            AND (views_before, ad_views_before) <> (($length - 1) * (1 + video_id % 100), ($length - 1) * (video_id % 7))")
  [ "$wrong" = 0 ] || { echo "   $wrong rows with wrong sums before them" >&2; exit 1; }
  p50s+=("$(echo "$out" | sed -E 's/.*p50 ([0-9.]+) ms.*/\1/')")
  psql "$pg/postgres" -qc "DROP DATABASE $db WITH (FORCE)"
done
python3 - "$days" "${p50s[@]}" <<'PY'
import sys
days, empty, history = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
print(f"== p50 of a batch: {history:.1f} ms with {days} days of history, {empty:.1f} ms with 1: {history / empty:.2f}x")
PY
