#!/usr/bin/env bash
# The Studio's performance (issue 21): a creator with VIDEOS videos and DAYS
# settled days (seeded through the API: imports, then one settlement
# range), then the dashboard loaded ROUNDS times in Chromium with the report
# cache emptied before each load. Prints the data's arrival time and the
# page's JavaScript size (e2e/bench-dashboard.mjs).
#
#   bash bench/studio.sh [VIDEOS=1000] [DAYS=365] [ROUNDS=20]
set -euo pipefail
cd "$(dirname "$0")/.."
export VIDEOS=${1:-1000} DAYS=${2:-365} ROUNDS=${3:-20}
export SSP_PROFILE=${SSP_PROFILE:-release} SSP_DB_PREFIX=ssp_bench_studio SSP_RUN_DIR=./data/bench-studio
export GATEWAY_ADDR=127.0.0.1:18380 GATEWAY_METRICS_ADDR=127.0.0.1:19380 AUTH_RATE_LIMIT_PER_MINUTE=0
export STREAMING_REDIS_PREFIX=ssp-bench-studio-$(date +%s)
export REVENUE_REDIS_PREFIX=$STREAMING_REDIS_PREFIX-reports
export ADMIN_EMAIL=${ADMIN_EMAIL:-admin@example.com} ADMIN_PASSWORD=${ADMIN_PASSWORD:-admin-password}
[ -x /usr/bin/chromium ] || apt-get install -y -q chromium >/dev/null
(cd e2e && npm ci --no-audit --no-fund --silent)
trap 'bash deploy/stack.sh down' EXIT
bash deploy/stack.sh up
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); profile $SSP_PROFILE"
(cd e2e && STUDIO_BASE="http://$GATEWAY_ADDR" REPORT_GENERATION_KEY="$REVENUE_REDIS_PREFIX:generation" node bench-dashboard.mjs)
