#!/usr/bin/env bash
# Benchmark: the monthly close (SPEC §11.4) of October 2026 for C creators
# (default 100,000) owning V videos (default 3,000,000), end to end. A
# month of payable transfers is generated into a fresh revenue database
# (PostgreSQL): an `earning` per video on each of D days of October (default
# 1: V transfers spread over the 31 days; 31: every day), a `restatement` for
# 1 % of the videos and an
# `adjustment` (clawback) for 0.1 %, with every day of October settled and
# final. The user and revenue services and the gateway start as release
# processes; an admin closes the month through the gateway. Prints the
# close, the wall time, the statements issued and their totals, the
# payout and tax transfers posted, and the revenue service's peak memory.
# Drops the databases after.
#
#   bash bench/close.sh [creators=100000] [videos=3000000] [days=1]
set -euo pipefail
cd "$(dirname "$0")/.."
creators=${1:-100000}
videos=${2:-3000000}
days=${3:-1}
pg=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
n=$$
bin=./target/release
cargo build --release --quiet -p user-service -p revenue-service -p gateway
for db in users revenue; do psql "$pg/postgres" -qc "CREATE DATABASE bench_${db}_$n"; done
work=$(mktemp -d)
cleanup() {
  kill "${gw_pid:-}" "${rs_pid:-}" "${us_pid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  for db in users revenue; do psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS bench_${db}_$n WITH (FORCE)" || true; done
  rm -rf "$work"
}
trap cleanup EXIT
export SERVICE_CREDENTIAL=bench-credential RUST_LOG=warn DATA_DIR="$work"
USER_DATABASE_URL="$pg/bench_users_$n" USER_GRPC_ADDR=127.0.0.1:50181 USER_GENERATE_SIGNING_KEY=true \
  ADMIN_EMAIL=admin@example.com ADMIN_PASSWORD=bench-password "$bin/user-service" &
us_pid=$!
# No streaming service: the close reads only the revenue database.
REVENUE_DATABASE_URL="$pg/bench_revenue_$n" REVENUE_GRPC_ADDR=127.0.0.1:50183 \
  REVENUE_USER_SERVICE_URL=http://127.0.0.1:50181 REVENUE_STREAMING_SERVICE_URL=http://127.0.0.1:50182 \
  SETTLEMENT_LATE_POLL_SECONDS=0 SETTLEMENT_SCHEDULE="0 0 0 1 1 * 2099" CLOSE_SCHEDULE="0 0 0 1 1 * 2099" "$bin/revenue-service" &
rs_pid=$!
for _ in $(seq 100); do
  psql "$pg/bench_revenue_$n" -tAc "SELECT 1 FROM information_schema.tables WHERE table_name = 'closes'" | grep -q 1 && break
  sleep 0.2
done
echo "== generating $videos videos of $creators creators, earning on $days day(s) each: a month of transfers in October 2026"
gen_start=$(date +%s.%N)
psql "$pg/bench_revenue_$n" -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO settled_days (day, settled_at, counts_version)
  SELECT d::date, now(), 0 FROM generate_series('2026-10-01'::date, '2026-10-31'::date, '1 day') d;
INSERT INTO ledger_postings (source_kind, source_id, reason, actor, posted_at)
  VALUES ('run', 1, NULL, 'settlement', now());
-- Earnings: 1 to 5,000 won a video and day, creator v % C + 1, days
-- (v + k) % 31 for k < D.
INSERT INTO ledger_transfers (creator_id, posting_id, video_id, amount, day, kind, debit_account, credit_account)
  SELECT v % $creators + 1, 1, v, 1 + ((v::bigint + k) * 7919) % 5000, '2026-10-01'::date + ((v + k) % 31), 1, 1, 0
  FROM generate_series(1, $videos) v CROSS JOIN generate_series(0, $days - 1) k ORDER BY 1, 3, 5;
-- Restatements of 1 % (up), clawbacks of 0.1 % (down).
INSERT INTO ledger_transfers (creator_id, posting_id, video_id, amount, day, kind, debit_account, credit_account)
  SELECT v % $creators + 1, 1, v, 1 + v % 300, '2026-10-01'::date + (v % 31), 2, 1, 0
  FROM generate_series(1, $videos, 100) v ORDER BY 1, 3;
INSERT INTO ledger_transfers (creator_id, posting_id, video_id, amount, day, kind, debit_account, credit_account)
  SELECT v % $creators + 1, 1, v, 1 + v % 1000, '2026-10-01'::date + (v % 31), 3, 0, 1
  FROM generate_series(1, $videos, 1000) v ORDER BY 1, 3;
ANALYZE ledger_transfers;
SQL
gen_end=$(date +%s.%N)
echo "== generated in $(python3 -c "print(f'{$gen_end - $gen_start:.1f}')") s: $(psql "$pg/bench_revenue_$n" -tAc "SELECT COUNT(*) FROM ledger_transfers") transfers"
GATEWAY_ADDR=127.0.0.1:18192 GATEWAY_USER_SERVICE_URL=http://127.0.0.1:50181 \
  GATEWAY_STREAMING_SERVICE_URL=http://127.0.0.1:50182 GATEWAY_REVENUE_SERVICE_URL=http://127.0.0.1:50183 \
  AUTH_RATE_LIMIT_PER_MINUTE=0 "$bin/gateway" &
gw_pid=$!
base=http://127.0.0.1:18192
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.2; done
token=$(curl -sf -X POST "$base/api/v1/auth/login" --json '{"email":"admin@example.com","password":"bench-password"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
psql "$pg/postgres" -qc CHECKPOINT
echo "== machine: $(nproc) cores; closing 2026-10"
start=$(date +%s.%N)
curl -sS --max-time 900 -X POST "$base/api/v1/admin/closes" -H "authorization: Bearer $token" --json '{"month":"2026-10"}'
echo
end=$(date +%s.%N)
echo "== wall time $(python3 -c "print(f'{$end - $start:.1f}')") s (request to answer)"
echo "== revenue-service: peak RSS $(awk '/VmHWM/{printf "%.1f MiB", $2/1024}' "/proc/$rs_pid/status")"
psql "$pg/bench_revenue_$n" -tA <<'SQL'
SELECT 'statements ' || COUNT(*) || ', paid ' || COUNT(*) FILTER (WHERE payout > 0)
  || ', carried ' || COUNT(*) FILTER (WHERE payout = 0)
  || '; payout ' || SUM(payout) || ' won, income tax ' || SUM(income_tax) || ', local tax ' || SUM(local_tax)
  || ', net ' || SUM(net) FROM statements;
SELECT 'payout and tax transfers posted: ' || COUNT(*) FROM ledger_transfers WHERE kind IN (4, 5, 6);
SQL
echo "== closing 2026-10 again (nothing new)"
start=$(date +%s.%N)
curl -sS -o /dev/null -w '%{http_code}\n' -X POST "$base/api/v1/admin/closes" -H "authorization: Bearer $token" --json '{"month":"2026-10"}'
end=$(date +%s.%N)
echo "== wall time $(python3 -c "print(f'{$end - $start:.3f}')") s"
