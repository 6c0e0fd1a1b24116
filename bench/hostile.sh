#!/usr/bin/env bash
# Benchmarks of issue 15 against the all-in-one process of the README
# (`stack up`, embedded SQLite, in-process counters), loopback only:
#
#   bash bench/hostile.sh burst  [logins=200] [rounds=2] [idle seconds=30]
#   bash bench/hostile.sh import [days=90000]
#   bash bench/hostile.sh probe
#
# burst: LOGINS concurrent logins ROUNDS times (rate limit off), then idle;
# prints the statuses, the slowest answer and the process's resident memory
# before, at its peak and after the idle time.
# import: imports DAYS distinct days of one video while plays and uploads go
# on; prints the import's time and the plays' and uploads' p50/p99/max.
# probe: replays the issue's attacks (bench/hostile-probe.py) and prints
# what each did.
# BENCH_STACK_BIN names another `stack` binary to measure (an older build,
# for a before/after); by default this tree's release build.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?burst or import}
stack=${BENCH_STACK_BIN:-./target/release/stack}
[ -n "${BENCH_STACK_BIN:-}" ] || cargo build --release --quiet -p stack

work=$(mktemp -d)
port=${BENCH_PORT:-18280}
cleanup() {
  kill "${pid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

DATA_DIR="$work" GATEWAY_ADDR=127.0.0.1:$port GATEWAY_METRICS_ADDR=127.0.0.1:0 \
  GATEWAY_TRUSTED_PROXIES=127.0.0.1 AUTH_RATE_LIMIT_PER_MINUTE=0 RUST_LOG=warn \
  ADMIN_EMAIL=admin@example.com ADMIN_PASSWORD=bench-password \
  "$stack" up >"$work/stack.log" 2>&1 &
pid=$!
base=http://127.0.0.1:$port
for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.2; done

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(uname -r)"
case "$mode" in
  burst) python3 bench/hostile.py burst --gateway "$base" --pid "$pid" \
           --logins "${2:-200}" --rounds "${3:-2}" --idle "${4:-30}" ;;
  import) python3 bench/hostile.py import --gateway "$base" \
           --admin-email admin@example.com --admin-password bench-password --days "${2:-90000}" ;;
  probe) python3 bench/hostile-probe.py --gateway "$base" \
           --admin-email admin@example.com --admin-password bench-password ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
ticks=$(awk '{print $14+$15}' "/proc/$pid/stat")
echo "== stack: CPU $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", t/hz}') s, peak RSS $(awk '/VmHWM/{printf "%.1f MiB", $2/1024}' "/proc/$pid/status")"
