#!/usr/bin/env bash
# A simulated day against the platform as separate processes on PostgreSQL +
# Redis (deploy/stack.sh): starts the stack with the streaming service on a
# compressed development clock, runs the traffic simulator for the last day
# of the latest month that is over and final (platform time), settles it,
# checks every video against SPEC §4–§6, settles the rest of the month,
# closes it and checks every statement and the withholding against SPEC
# §11.4, and stops the stack. Exits with the simulator's status (1 on a difference).
#
#   deploy/simulate.sh [simulator options]     e.g. --viewers 200 --videos 50 --plays 3000
#
# Settings (environment), besides those of deploy/stack.sh:
#   SIM_DAY_SECONDS   wall-clock seconds a simulated day takes (default 60)
#   SIM_LEAD_SECONDS  wall-clock seconds before the day starts, for the
#                     sign-ups and uploads (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."

day_seconds=${SIM_DAY_SECONDS:-60}
lead=${SIM_LEAD_SECONDS:-15}
profile=${SSP_PROFILE:-release}
flag=""
[ "$profile" = release ] && flag=--release
cargo build $flag -q -p user-service -p streaming-service -p revenue-service -p gateway -p stack -p simulator

speed=$((86400 / day_seconds))
export PLATFORM_TIME_ZONE=${PLATFORM_TIME_ZONE:-Asia/Seoul}
# At this speed SPEC's 30 s window would be a few milliseconds of wall-clock
# time; five simulated minutes keep it longer than a request takes.
export DEDUPE_WINDOW_SECONDS=${DEDUPE_WINDOW_SECONDS:-300}
export WRITEBACK_INTERVAL_SECONDS=1
export COUNTER_EVENT_LAG_SECONDS=$((2 * speed))
export SETTLEMENT_WATERMARK_POLL_SECONDS=1
export AUTH_RATE_LIMIT_PER_MINUTE=0
export GATEWAY_TRUSTED_PROXIES=127.0.0.1
export GATEWAY_ADDR=${GATEWAY_ADDR:-127.0.0.1:18080}
export ADMIN_EMAIL=${ADMIN_EMAIL:-admin@example.com}
export ADMIN_PASSWORD=${ADMIN_PASSWORD:-admin-password}

read -r day clock < <(python3 deploy/sim_clock.py "$PLATFORM_TIME_ZONE" "$speed" "$lead")

trap 'bash deploy/stack.sh down' EXIT
bash deploy/stack.sh up --dev-clock "$clock"
echo "simulating $day at ${speed}x (clock $clock)"
status=0
"target/$profile/simulator" --gateway "http://$GATEWAY_ADDR" --clock "$clock" --day "$day" --close-month "$@" || status=$?
bash deploy/stack.sh stats
exit $status
