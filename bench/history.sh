#!/usr/bin/env bash
# Benchmark (issue 19): do settlements and reports stay as fast with a long
# history as with none? Two passes in one run, each on fresh databases with
# the same VIDEOS videos (counts on 2026-11-20, 2026-11-21 and 2026-11-22, creators
# 1..1000, plus creator 1000001 with videos 1..10,000 and creator 1000002
# with videos 10,001..110,000 when there are that many):
#
#   1. "empty": 2026-11-20 is settled (the only history), then
#   2. "history": 2026-11-20 is settled and copied DAYS times onto the days
#      before it, straight into the revenue database (rows, roll-ups,
#      settled days and the ledger's earnings), as if settled;
#
# then in each pass the next day, 2026-11-21, is settled through the
# gateway (timed: the first settlement after the history was written, its
# pages mostly out of memory), then the reports are timed through the
# gateway, then 2026-11-22 is settled (timed: the day after a settled day,
# as every day in service; the first of the two is the worst case). Each
# settlement prints the megabytes read from the database's disk meanwhile.
# The reports are timed with the
# Redis report cache (bench/history-reports.py): `/stats/top` for the day,
# week and month, cold (first request after the settlement, a new cache
# key each) and warm; `/revenues?period=month` for the 10,000-video
# creator, cold; the month's CSV for the 100,000-video creator, with the
# gateway's and revenue service's peak memory before and after. Prints the
# database's bytes per million video-days (daily rows, roll-ups, ledger).
#
#   bash bench/history.sh [VIDEOS=1000000] [DAYS=365]
#
# Needs PostgreSQL and Redis on the machine (as the tests do); builds the
# release binaries; drops its databases and Redis keys after.
set -euo pipefail
cd "$(dirname "$0")/.."
videos=${1:-1000000}
days=${2:-365}
pg=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
redis=${BENCH_REDIS:-redis://127.0.0.1:6379}
bin=./target/release
cargo build --release --quiet -p user-service -p streaming-service -p revenue-service -p gateway
n=$$
work=$(mktemp -d)
pids=()
stop_services() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
drop_databases() {
  for db in users streaming revenue; do
    psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS hist_${db}_$n WITH (FORCE)" >/dev/null 2>&1 || true
  done
}
cleanup() {
  stop_services
  drop_databases
  redis-cli -u "$redis" --scan --pattern "hist$n*" | xargs -r redis-cli -u "$redis" del >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export SERVICE_CREDENTIAL=bench-credential RUST_LOG=warn DATA_DIR="$work"
base=http://127.0.0.1:18291
rpg() { psql "$pg/hist_revenue_$n" -v ON_ERROR_STOP=1 "$@"; }

start_services() { # pass name
  for db in users streaming revenue; do psql "$pg/postgres" -qc "CREATE DATABASE hist_${db}_$n"; done
  USER_DATABASE_URL="$pg/hist_users_$n" USER_GRPC_ADDR=127.0.0.1:50271 USER_GENERATE_SIGNING_KEY=true \
    ADMIN_EMAIL=admin@example.com ADMIN_PASSWORD=bench-password "$bin/user-service" &
  pids+=($!)
  STREAMING_DATABASE_URL="$pg/hist_streaming_$n" STREAMING_GRPC_ADDR=127.0.0.1:50272 \
    STREAMING_USER_SERVICE_URL=http://127.0.0.1:50271 WRITEBACK_INTERVAL_SECONDS=3600 "$bin/streaming-service" &
  pids+=($!)
  for _ in $(seq 100); do
    psql "$pg/hist_streaming_$n" -tAc "SELECT 1 FROM information_schema.tables WHERE table_name = 'watermarks'" | grep -q 1 && break
    sleep 0.2
  done
  psql "$pg/hist_streaming_$n" -q -v ON_ERROR_STOP=1 -v videos="$videos" -f bench/generate-daily-counts.sql
  psql "$pg/hist_streaming_$n" -q -v ON_ERROR_STOP=1 -c \
    "INSERT INTO daily_counts (video_id, day, views, watch_seconds, ad_views, views_before, ad_views_before)
       SELECT video_id, '2026-11-22', views, watch_seconds, ad_views, views_before + views, ad_views_before + ad_views
       FROM daily_counts WHERE day = '2026-11-21';
     UPDATE videos SET creator_id = 1000001 WHERE id <= 10000;
     UPDATE videos SET creator_id = 1000002 WHERE id > 10000 AND id <= 110000; ANALYZE videos"
  REVENUE_DATABASE_URL="$pg/hist_revenue_$n" REVENUE_GRPC_ADDR=127.0.0.1:50273 \
    REVENUE_USER_SERVICE_URL=http://127.0.0.1:50271 REVENUE_STREAMING_SERVICE_URL=http://127.0.0.1:50272 \
    REVENUE_REDIS_URL="$redis" REVENUE_REDIS_PREFIX="hist$n$1" "$bin/revenue-service" &
  rs_pid=$!
  pids+=($!)
  GATEWAY_ADDR=127.0.0.1:18291 GATEWAY_USER_SERVICE_URL=http://127.0.0.1:50271 \
    GATEWAY_STREAMING_SERVICE_URL=http://127.0.0.1:50272 GATEWAY_REVENUE_SERVICE_URL=http://127.0.0.1:50273 \
    AUTH_RATE_LIMIT_PER_MINUTE=0 "$bin/gateway" &
  gw_pid=$!
  pids+=($!)
  for _ in $(seq 150); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.2; done
  login
}

# The admin's access token (it expires: taken again after a long fill).
login() {
  token=$(curl -sf -X POST "$base/api/v1/auth/login" --json '{"email":"admin@example.com","password":"bench-password"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
}

# Megabytes read so far from the disk that holds PostgreSQL's data.
disk=$(basename "$(df --output=source "$(psql "$pg/postgres" -tAc 'SHOW data_directory')" | tail -1)")
read_mib() { awk -v d="$disk" '$3 == d { m = $6 * 512 / 1048576 } END { printf "%.0f", m }' /proc/diskstats; }

# The server's WAL and checkpoint counters so far: "WAL-bytes
# full-page-images checkpoints buffers-written-by-checkpoints" (PostgreSQL
# 15's pg_stat_wal and pg_stat_bgwriter; cluster-wide, so a settlement's
# difference includes whatever else writes meanwhile).
wal_counters() {
  psql "$pg/postgres" -tA -F ' ' -c "SELECT w.wal_bytes::bigint, w.wal_fpi,
    b.checkpoints_timed + b.checkpoints_req, b.buffers_checkpoint FROM pg_stat_wal w, pg_stat_bgwriter b"
}

settle() { # day; prints "seconds status rows disk-MiB-read WAL-MiB full-page-images checkpoints checkpoint-buffers"
  local start end run body status read0 w0 f0 c0 b0 w1 f1 c1 b1
  read0=$(read_mib)
  read -r w0 f0 c0 b0 < <(wal_counters)
  start=$(date +%s.%N)
  run=$(curl -sf -X POST "$base/api/v1/admin/settlements" -H "authorization: Bearer $token" \
    --json "{\"from\":\"$1\",\"to\":\"$1\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_ids"][0])')
  while :; do
    body=$(curl -sf "$base/api/v1/admin/settlements/$run" -H "authorization: Bearer $token")
    status=$(echo "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    [ "$status" = succeeded ] || [ "$status" = failed ] && break
    sleep 0.2
  done
  end=$(date +%s.%N)
  read -r w1 f1 c1 b1 < <(wal_counters)
  echo "$(python3 -c "print(f'{$end - $start:.1f}')") $status $(echo "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"])') $(($(read_mib) - read0)) $(((w1 - w0) >> 20)) $((f1 - f0)) $((c1 - c0)) $((b1 - b0))"
}

# Copies the settled 2026-11-20 onto the DAYS days before it, as if each
# had been settled: rows, roll-ups (rebuilt), settled days, earnings. The
# roll-ups are written period by period, as a year of settlements lays
# them down (each period's rows together, the current ones last), not
# creator by creator.
fill_history() {
  rpg -q <<SQL
DO \$\$
DECLARE m date;
BEGIN
  FOR m IN SELECT generate_series(date_trunc('month', date '2026-11-20' - $days), date '2026-11-01', interval '1 month')::date LOOP
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF daily_stats FOR VALUES FROM (%L) TO (%L)',
      'daily_stats_p' || to_char(m, 'YYYYMM'), m, (m + interval '1 month')::date);
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF ledger_transfers FOR VALUES FROM (%L) TO (%L)',
      'ledger_transfers_p' || to_char(m, 'YYYYMM'), m, (m + interval '1 month')::date);
  END LOOP;
END \$\$;
INSERT INTO daily_stats (day, video_id, creator_id, title, views, watch_seconds, ad_views, video_amount,
    ad_amount, total_amount, rate_card_version)
  SELECT date '2026-11-20' - k, video_id, creator_id, title, views, watch_seconds, ad_views, video_amount,
    ad_amount, total_amount, rate_card_version
  FROM daily_stats, generate_series(1, $days) k WHERE day = '2026-11-20';
INSERT INTO settled_days (day, settled_at, counts_version)
  SELECT date '2026-11-20' - k, now(), 0 FROM generate_series(1, $days) k;
INSERT INTO ledger_transfers (creator_id, posting_id, video_id, amount, day, kind, debit_account, credit_account)
  SELECT t.creator_id, t.posting_id, t.video_id, t.amount, date '2026-11-20' - k, t.kind, t.debit_account, t.credit_account
  FROM ledger_transfers t, generate_series(1, $days) k WHERE t.day = '2026-11-20';
TRUNCATE rollup_video_stats, rollup_creator_stats;
INSERT INTO rollup_video_stats (creator_id, period, period_start, video_id, title, title_day, days,
    views, watch_seconds, ad_views, video_amount, ad_amount, total_amount)
  SELECT creator_id, p.period, CAST(date_trunc(p.period, day) AS DATE), video_id, MAX(title), MAX(day), COUNT(*),
    SUM(views), SUM(watch_seconds), SUM(ad_views), SUM(video_amount), SUM(ad_amount), SUM(total_amount)
  FROM daily_stats, (VALUES ('week'), ('month')) p(period)
  GROUP BY creator_id, p.period, CAST(date_trunc(p.period, day) AS DATE), video_id
  ORDER BY 3, 2, 1, 4;
INSERT INTO rollup_creator_stats (creator_id, period, period_start, days,
    views, watch_seconds, ad_views, video_amount, ad_amount, total_amount)
  SELECT creator_id, p.period, CAST(date_trunc(p.period, day) AS DATE), COUNT(*),
    SUM(views), SUM(watch_seconds), SUM(ad_views), SUM(video_amount), SUM(ad_amount), SUM(total_amount)
  FROM daily_stats, (VALUES ('day'), ('week'), ('month')) p(period)
  GROUP BY creator_id, p.period, CAST(date_trunc(p.period, day) AS DATE)
  ORDER BY 3, 2, 1;
VACUUM ANALYZE;
SQL
}

sizes() { # bytes of daily rows, roll-ups, ledger; video-days
  rpg -tA -F ' ' -c "SELECT
    (SELECT SUM(pg_total_relation_size(relid)) FROM pg_partition_tree('daily_stats')),
    pg_total_relation_size('rollup_video_stats') + pg_total_relation_size('rollup_creator_stats'),
    (SELECT SUM(pg_total_relation_size(relid)) FROM pg_partition_tree('ledger_transfers')),
    (SELECT COUNT(*) FROM daily_stats)"
}

rss() { awk '/VmHWM/{printf "%.1f", $2/1024}' "/proc/$1/status"; }

echo "PostgreSQL: $(psql "$pg/postgres" -tA -F ', ' -c "SELECT current_setting('shared_buffers'),
  'max_wal_size ' || current_setting('max_wal_size'), 'checkpoint_timeout ' || current_setting('checkpoint_timeout')")"
results=()
for pass in empty history; do
  echo "== pass '$pass': $videos videos$([ $pass = history ] && echo ", $days days of history")"
  start_services "$pass"
  read -r secs status rows _ < <(settle 2026-11-20)
  echo "   2026-11-20 settled in $secs s ($status, $rows rows)"
  if [ "$pass" = history ]; then
    t0=$(date +%s)
    fill_history
    echo "   history filled in $(($(date +%s) - t0)) s"
  fi
  psql "$pg/postgres" -qc CHECKPOINT
  sync
  login
  read -r secs status rows mib wal fpi ckpt cbuf < <(settle 2026-11-21)
  echo "   next day 2026-11-21 settled in $secs s ($status, $rows rows, $mib MiB read from disk;" \
    "WAL $wal MiB, $fpi full-page images, $ckpt checkpoints writing $cbuf buffers)"
  settle_secs=$secs
  gw_before=$(rss "$gw_pid") rs_before=$(rss "$rs_pid")
  report=$(python3 bench/history-reports.py "$base" "$token")
  echo "$report" | sed 's/^/   /'
  echo "   peak RSS: gateway $gw_before → $(rss "$gw_pid") MiB, revenue-service $rs_before → $(rss "$rs_pid") MiB"
  read -r secs status rows mib wal fpi ckpt cbuf < <(settle 2026-11-22)
  echo "   the day after, 2026-11-22, settled in $secs s ($status, $rows rows, $mib MiB read from disk;" \
    "WAL $wal MiB, $fpi full-page images, $ckpt checkpoints writing $cbuf buffers)"
  after_secs=$secs
  read -r daily rollup ledger video_days < <(sizes)
  python3 - "$daily" "$rollup" "$ledger" "$video_days" <<'PY'
import sys
daily, rollup, ledger, rows = (int(x) for x in sys.argv[1:])
m = rows / 1e6
print(f"   database: {rows} video-days; per million video-days: daily rows {daily / m / 2**20:.0f} MiB, "
      f"roll-ups {rollup / m / 2**20:.0f} MiB, ledger {ledger / m / 2**20:.0f} MiB "
      f"(daily rows and ledger {(daily + ledger) / m / 2**20:.0f} MiB before roll-ups, "
      f"{(daily + ledger + rollup) / m / 2**20:.0f} MiB with them)")
PY
  results+=("$pass $settle_secs $after_secs")
  stop_services
  drop_databases
done
python3 - "${results[@]}" <<'PY'
import sys
runs = {name: rest for name, *rest in (arg.split() for arg in sys.argv[1:])}
for i, label in enumerate(("next day's settlement (the first after the history)", "the day after")):
    e, h = float(runs["empty"][i]), float(runs["history"][i])
    print(f"== {label}: {h:.1f} s with history, {e:.1f} s without: {h / e:.2f}x")
PY
