#!/usr/bin/env bash
# The Studio's end-to-end tests (issue 21): installs Debian's Chromium and
# the pinned npm packages when missing, checks the vendored chart library
# against its npm package, starts the stack (deploy/stack.sh: separate
# processes, PostgreSQL, Redis, Studio sessions in Redis), runs
# e2e/studio.test.mjs, and stops the stack.
#
# Environment: SSP_PROFILE (debug|release, default release), STUDIO_SCREENSHOTS
# (where the screenshots go, default docs/studio).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  apt-get install -y -q chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium >/dev/null; }
fi
(cd e2e && npm ci --no-audit --no-fund --silent)

echo "== the vendored uPlot equals its npm package's files"
for f in uPlot.iife.min.js uPlot.min.css; do
  cmp "e2e/node_modules/uplot/dist/$f" "gateway/studio/vendor/$f"
done

export SSP_DB_PREFIX=${SSP_DB_PREFIX:-ssp_e2e} SSP_RUN_DIR=${SSP_RUN_DIR:-./data/e2e}
export GATEWAY_ADDR=${GATEWAY_ADDR:-127.0.0.1:18280} GATEWAY_METRICS_ADDR=${GATEWAY_METRICS_ADDR:-127.0.0.1:19280}
export AUTH_RATE_LIMIT_PER_MINUTE=0
export STUDIO_SCREENSHOTS=${STUDIO_SCREENSHOTS:-$PWD/docs/studio}
trap 'bash deploy/stack.sh down' EXIT
bash deploy/stack.sh up
(cd e2e && STUDIO_BASE="http://$GATEWAY_ADDR" npm test)
