#!/usr/bin/env bash
# Benchmark: the daily-counts call (SPEC §9) over N videos (default
# 5,000,000). Creates a fresh streaming database, lets the streaming service
# migrate it, generates N videos with counts on the day before and on the
# day itself (SQL generate_series), then streams the day over gRPC with the
# daily_counts_bench client and prints rows/s, RUNS times (default 1) over
# the same data; PERF_OUT=file records a `perf` profile of the service
# during the first run. Drops the database after.
#
#   [RUNS=n] bash bench/daily-counts.sh [videos=5000000]
set -euo pipefail
cd "$(dirname "$0")/.."
videos=${1:-5000000}
runs=${RUNS:-1}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive whole number, not '$runs'" >&2; exit 2; }
pg=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
db=bench_daily_$$
cargo build --release --quiet -p streaming-service --bin streaming-service --example daily_counts_bench
psql "$pg/postgres" -qc "CREATE DATABASE $db"
work=$(mktemp -d)
cleanup() {
  kill "${ss_pid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT
export SERVICE_CREDENTIAL=bench-credential RUST_LOG=warn
STREAMING_DATABASE_URL="$pg/$db" STREAMING_GRPC_ADDR=127.0.0.1:50162 DATA_DIR="$work" \
  ./target/release/streaming-service &
ss_pid=$!
for _ in $(seq 100); do
  psql "$pg/$db" -tAc "SELECT 1 FROM information_schema.tables WHERE table_name = 'watermarks'" | grep -q 1 && break
  sleep 0.2
done
echo "== generating $videos videos with counts on 2026-11-20 and 2026-11-21"
time psql "$pg/$db" -q -v ON_ERROR_STOP=1 -v videos="$videos" -f bench/generate-daily-counts.sql
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14+$15)/hz}' "/proc/$1/stat"; }
echo "== machine: $(nproc) cores; streaming day 2026-11-21"
for run in $(seq "$runs"); do
  echo "== run $run"
  ss_before=$(cpu "$ss_pid")
  # PERF_OUT=file profiles the service during the first run only.
  if [ -n "${PERF_OUT:-}" ] && [ "$run" = 1 ]; then
    perf record -g -o "$PERF_OUT" -p "$ss_pid" -- sleep 5 >/dev/null 2>&1 &
    perf_pid=$!
  fi
  read -r _ idle_before < <(awk '/^cpu /{print $1, $5+$6}' /proc/stat)
  /usr/bin/time -f "== client CPU %U s user + %S s system" \
    ./target/release/examples/daily_counts_bench http://127.0.0.1:50162 2026-11-21 bench-credential
  read -r _ idle_after < <(awk '/^cpu /{print $1, $5+$6}' /proc/stat)
  [ -n "${perf_pid:-}" ] && { wait "$perf_pid" || true; perf_pid=; }
  echo "== streaming-service CPU during the stream $(awk -v a="$ss_before" -v b="$(cpu "$ss_pid")" 'BEGIN{printf "%.1f", b-a}') s; machine idle $(awk -v a="$idle_before" -v b="$idle_after" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", (b-a)/hz}') core-s"
done
echo "== streaming-service peak RSS $(awk '/VmHWM/{printf "%.1f MiB", $2/1024}' "/proc/$ss_pid/status")"
