#!/usr/bin/env bash
# Benchmark: the counting script alone. First `redis-benchmark` runs the
# play script (streaming-service/src/counting/lua/play.lua) with EVALSHA,
# random viewers and videos, 50 clients; then our RedisStore::play (the
# dirty mark, the same script, the second mark) from 50 tasks. Both against
# the Redis on 127.0.0.1:6379; keys under a bench prefix, deleted after.
#
#   bash bench/counting.sh [requests=200000] [seconds=10] [clients=50]
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-200000}
seconds=${2:-10}
clients=${3:-50}
prefix=rb$$
cargo build --release --quiet -p streaming-service --bin streaming-service --example counting_bench
sha=$(redis-cli script load "$(cat streaming-service/src/counting/lua/play.lua)")
now=$(($(date +%s) * 1000))
echo "== machine: $(nproc) cores; redis $(redis-server --version | awk '{print $3}')"
echo "== redis-benchmark: EVALSHA play.lua, $clients clients, $requests requests"
redis-benchmark -q -n "$requests" -c "$clients" -r 1000000 \
  EVALSHA "$sha" 4 "$prefix:{v__rand_int__}:dd:a" "$prefix:{v__rand_int__}:c:d" \
  "$prefix:{v__rand_int__}:r:a" "$prefix:{v__rand_int__}:s:__rand_int__" \
  0 "$now" 30000 600 a 60000 | tr '\r' '\n' | tail -1
echo "== RedisStore::play, $clients tasks, $seconds s"
./target/release/examples/counting_bench redis://127.0.0.1:6379 "$clients" "$seconds"
for p in "$prefix" "bench"; do
  redis-cli --scan --pattern "$p*" | xargs -r -n 1000 redis-cli del >/dev/null
done
