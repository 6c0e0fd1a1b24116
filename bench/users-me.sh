#!/usr/bin/env bash
# Benchmark: authenticated GET /api/v1/users/me through the gateway, user
# service on PostgreSQL, load from wrk on the same machine (loopback only).
#
#   bash bench/users-me.sh [duration=30s] [connections=64] [wrk threads=1]
#
# Builds release binaries, creates a fresh database, starts both services,
# signs up and logs in one user, runs wrk, prints its report and each
# service's CPU time and peak memory, then stops everything and drops the
# database. Needs `wrk` (apt-get install wrk) and PostgreSQL on
# 127.0.0.1:5432 (trust auth).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-30s}
connections=${2:-64}
threads=${3:-1}
pg=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
db=bench_users_$$

command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 2; }
cargo build --release --quiet -p user-service -p gateway

work=$(mktemp -d)
psql "$pg/postgres" -qc "CREATE DATABASE $db"
cleanup() {
  kill "${gw_pid:-}" "${us_pid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT

export SERVICE_CREDENTIAL=bench-credential RUST_LOG=warn
USER_DATABASE_URL="$pg/$db" USER_GRPC_ADDR=127.0.0.1:50151 DATA_DIR="$work" \
  USER_GENERATE_SIGNING_KEY=true ./target/release/user-service &
us_pid=$!
GATEWAY_ADDR=127.0.0.1:18181 GATEWAY_USER_SERVICE_URL=http://127.0.0.1:50151 \
  AUTH_RATE_LIMIT_PER_MINUTE=0 ./target/release/gateway &
gw_pid=$!

base=http://127.0.0.1:18181
for _ in $(seq 50); do curl -sf "$base/.well-known/jwks.json" >/dev/null && break; sleep 0.2; done
curl -sf -X POST "$base/api/v1/auth/signup" \
  --json '{"email":"bench@example.com","password":"bench-password","display_name":"Bench","role":"viewer"}' >/dev/null
token=$(curl -sf -X POST "$base/api/v1/auth/login" --json '{"email":"bench@example.com","password":"bench-password"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -sf "$base/api/v1/users/me" -H "authorization: Bearer $token" >/dev/null

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; wrk -t$threads -c$connections -d$duration"
wrk -t"$threads" -c"$connections" -d"$duration" --latency -H "authorization: Bearer $token" "$base/api/v1/users/me"

for name in user-service:$us_pid gateway:$gw_pid; do
  pid=${name#*:}
  ticks=$(awk '{print $14+$15}' "/proc/$pid/stat")
  echo "== ${name%%:*}: CPU $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", t/hz}') s, peak RSS $(awk '/VmHWM/{printf "%.1f MiB", $2/1024}' "/proc/$pid/status")"
done
