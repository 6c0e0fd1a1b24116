#!/usr/bin/env bash
# Kill one of two streaming-service instances under load (issue 6).
#
# Starts the stack as separate processes on PostgreSQL + Redis with two
# streaming-service instances behind the gateway (deploy/stack.sh with
# STREAMING_INSTANCES=2: a static list, each instance probed for health),
# plays one video from many anonymous viewers through the gateway, sends
# SIGKILL to the second instance midway, then stops the stack gracefully
# (the survivor writes the counters back) and compares the views in the
# streaming database with the plays the gateway answered view_counted=true.
#
#   deploy/failover.sh            FAILOVER_SECONDS (default 20), FAILOVER_KILL_AT (8),
#                                 FAILOVER_THREADS (16); deploy/stack.sh's settings apply
#
# Prints the load's summary (failure window, plays, counted views) and
# "views in the database: N"; exits 1 if they differ.
set -euo pipefail
cd "$(dirname "$0")/.."

export STREAMING_INSTANCES=2
export SSP_DB_PREFIX=${SSP_DB_PREFIX:-ssp_failover}
export SSP_RUN_DIR=${SSP_RUN_DIR:-./data/failover}
export GATEWAY_ADDR=${GATEWAY_ADDR:-127.0.0.1:18085}
export GATEWAY_METRICS_ADDR=${GATEWAY_METRICS_ADDR:-127.0.0.1:19465}
export GATEWAY_TRUSTED_PROXIES=127.0.0.1
export AUTH_RATE_LIMIT_PER_MINUTE=0
export WRITEBACK_INTERVAL_SECONDS=${WRITEBACK_INTERVAL_SECONDS:-1}
pg=${SSP_PG:-postgres://postgres@127.0.0.1:5432}

trap 'bash deploy/stack.sh down >/dev/null' EXIT
bash deploy/stack.sh up
victim=$(cat "$SSP_RUN_DIR/streaming-service-2.pid")
summary=$(python3 deploy/failover.py --gateway "http://$GATEWAY_ADDR" --kill-pid "$victim" \
  --duration "${FAILOVER_SECONDS:-20}" --kill-at "${FAILOVER_KILL_AT:-8}" --threads "${FAILOVER_THREADS:-16}")
echo "$summary"
bash deploy/stack.sh down
trap - EXIT

video=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["video_id"])' "$summary")
counted=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["counted_views"])' "$summary")
failed=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["plays_failed"])' "$summary")
stored=$(psql "$pg/${SSP_DB_PREFIX}_streaming" -tA -c "SELECT COALESCE(SUM(views), 0) FROM daily_counts WHERE video_id = $video")
echo "views in the database: $stored; plays answered view_counted=true: $counted; failed plays: $failed"
# A play that failed may have been counted before its instance died (its
# answer was lost), so the database may hold up to that many more; never
# fewer than the counted answers.
if [ "$stored" -lt "$counted" ] || [ "$stored" -gt $((counted + failed)) ]; then
  echo "MISMATCH: counted views lost or counted twice" >&2
  exit 1
fi
echo "0 differences"
