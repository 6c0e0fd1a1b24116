#!/usr/bin/env bash
# The compose stack, for real (issue 20):
#
#   bash deploy/compose.sh up        build missing images (deploy/images.sh),
#                                    start the stack, wait until it is ready
#   bash deploy/compose.sh simulate  the stack with 3 streaming and 2 revenue
#                                    replicas on the development clock, the
#                                    simulator against the published port,
#                                    then each streaming replica's plays
#   bash deploy/compose.sh down      remove containers, networks and volumes
#                                    (images stay)
#
# SSP_PROFILE (release, or debug as in CI) picks the binaries packaged.
# Secrets are generated once into data/compose/.env. GATEWAY_PORT (default
# 18480) is published on 127.0.0.1 only. The simulator's options can follow
# `simulate` (default: 200 viewers, 50 videos, 2,000 plays, a 40 s day).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-ssp}
export GATEWAY_PORT=${GATEWAY_PORT:-18480}
profile=${SSP_PROFILE:-release}
env_file=data/compose/.env
gateway=http://127.0.0.1:$GATEWAY_PORT

secrets() {
  [ -f "$env_file" ] && return 0
  mkdir -p "$(dirname "$env_file")"
  umask 077
  {
    echo "SERVICE_CREDENTIAL=$(openssl rand -hex 32)"
    echo "POSTGRES_PASSWORD=$(openssl rand -hex 16)"
    echo "USER_SIGNING_KEY=$(openssl genpkey -algorithm ed25519 | awk '{printf "%s\\n", $0}')"
    echo "ADMIN_EMAIL=admin@example.com"
    echo "ADMIN_PASSWORD=$(openssl rand -hex 12)"
  } >"$env_file"
}

compose() {
  docker-compose --compatibility --env-file "$env_file" -f docker-compose.yml "$@"
}

ready() { # seconds
  local t0=$SECONDS
  until curl -fsS "$gateway/readyz" >/dev/null 2>&1; do
    if [ $((SECONDS - t0)) -ge "$1" ]; then
      echo "the stack was not ready within $1 s" >&2
      compose ps >&2 || true
      compose logs --tail 20 >&2 || true
      return 1
    fi
    sleep 1
  done
  echo "ready in $((SECONDS - t0)) s: $gateway (Studio: $gateway/studio/)"
}

up() {
  local t0=$SECONDS
  bash deploy/images.sh
  secrets
  compose up -d --no-build
  ready 180
  echo "up in $((SECONDS - t0)) s"
}

down() {
  [ -f "$env_file" ] || secrets
  SIM_DEV_CLOCK=${SIM_DEV_CLOCK:-unused} sim_compose down --volumes --remove-orphans
}

# The simulation's stack: fresh, on the development clock, scaled to 3
# streaming and 2 revenue replicas, ready. Sets SIM_DAY and SIM_CLOCK, and
# exports the admin's credentials for the simulator.
sim_up() {
  local day_seconds=${SIM_DAY_SECONDS:-40} lead=${SIM_LEAD_SECONDS:-60}
  # Each step checked: callers may run this where `set -e` is off.
  bash deploy/images.sh || return 1
  secrets || return 1
  SIM_DEV_CLOCK=${SIM_DEV_CLOCK:-unused} sim_compose down --volumes --remove-orphans >/dev/null 2>&1 || true
  local flag=""
  [ "$profile" = release ] && flag=--release
  cargo build $flag -q -p simulator || return 1
  # The clock is fixed now: from here to the first play (the replicas
  # starting, the simulator's set-up) must take less than the lead.
  local speed=$((86400 / day_seconds))
  read -r SIM_DAY SIM_CLOCK < <(python3 deploy/sim_clock.py "${PLATFORM_TIME_ZONE:-Asia/Seoul}" "$speed" "$lead")
  export SIM_DEV_CLOCK=$SIM_CLOCK SIM_COUNTER_EVENT_LAG_SECONDS=$((2 * speed))
  sim_compose up -d --no-build --scale streaming-service=3 --scale revenue-service=2 || return 1
  ready 180 || return 1
  ADMIN_EMAIL=$(sed -n 's/^ADMIN_EMAIL=//p' "$env_file")
  ADMIN_PASSWORD=$(sed -n 's/^ADMIN_PASSWORD=//p' "$env_file")
  export ADMIN_EMAIL ADMIN_PASSWORD
  echo "simulating $SIM_DAY at ${speed}x (clock $SIM_CLOCK) against $gateway"
}

sim_compose() {
  compose -f deploy/compose.sim.yml "$@"
}

# The simulator against the published port (after sim_up); its options can
# be given (default: 200 viewers, 50 videos, 2,000 plays).
sim_run() {
  local args=("$@")
  [ ${#args[@]} -gt 0 ] || args=(--viewers 200 --videos 50 --plays 2000)
  DEDUPE_WINDOW_SECONDS=${SIM_DEDUPE_WINDOW_SECONDS:-300} "target/$profile/simulator" --gateway "$gateway" --clock "$SIM_CLOCK" \
    --day "$SIM_DAY" --close-month "${args[@]}"
}

# Each streaming replica's plays from its own /metrics; fails when one
# served none.
replica_plays() {
  echo "plays answered by each streaming replica (its own /metrics):"
  local id plays idle=0
  for id in $(sim_compose ps -q streaming-service); do
    plays=$(docker exec "$id" curl -fsS http://127.0.0.1:9465/metrics |
      awk '/^streaming_plays_total/ {sum += $2} END {print sum + 0}')
    printf '  %-28s %s plays\n' "$(docker inspect -f '{{.Name}}' "$id" | tr -d /)" "$plays"
    [ "$plays" -gt 0 ] || idle=1
  done
  if [ "$idle" = 1 ]; then
    echo "a streaming replica served no play" >&2
    return 1
  fi
}

simulate() {
  local t0=$SECONDS status=0
  sim_up
  sim_run "$@" || status=$?
  replica_plays || status=1
  echo "simulate: $((SECONDS - t0)) s, exit $status"
  return $status
}

# Sourced (deploy/chaos.sh): the functions only.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0
case ${1:-} in
  up) up ;;
  simulate) shift; simulate "$@" ;;
  down) down ;;
  *) echo "usage: $0 up|simulate [simulator options]|down" >&2; exit 2 ;;
esac
