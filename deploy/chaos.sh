#!/usr/bin/env bash
# Faults injected into the compose stack under a simulated day (issue 20).
#
#   bash deploy/chaos.sh [FAULT ...]      default: every fault, in this order
#
#   replica-kill      docker kill one of the 3 streaming replicas mid-traffic
#   redis-restart     SIGKILL Redis mid-traffic, start it again (AOF on)
#   postgres-restart  restart PostgreSQL mid-traffic (write-backs every second)
#   gateway-term      SIGTERM the gateway mid-traffic, start it again: the
#                     requests it had accepted must finish: no attempt the
#                     simulator lost was acted on (its retry found nothing
#                     done: no inferred or uncertain effect)
#   lease-kill        kill the revenue replica whose settlement run holds the
#                     day's lease, mid-run (held inside its transaction by a
#                     table lock taken here), then release the lock
#   network-cut       cut the revenue replicas off the `counts` network (their
#                     only way to the streaming replicas) while the day's
#                     settlement pulls, restore it 15 s later
#
# Each fault runs on a fresh stack (deploy/compose.sh's simulation: 3
# streaming and 2 revenue replicas on the development clock), with the
# simulator retrying failed plays and pauses as a player would
# (--retry-failures) and re-queueing a failed settlement run, and ends with
# the simulator's check of the settled day and the month's close. Exits 0
# only if every fault ends with 0 differences (no count lost or doubled) and
# as its line above states. Figures per fault: requests failed for good,
# requests answered after a retry, failed attempts (refused / answered 5xx /
# broken), their window after the fault, recovery time. Logs in
# data/chaos/<fault>.log. SSP_PROFILE as in deploy/compose.sh.
set -euo pipefail
# shellcheck source=deploy/compose.sh
source "$(dirname "$0")/compose.sh"

out=data/chaos
mkdir -p "$out"
retry_seconds=${CHAOS_RETRY_SECONDS:-120}
# A dedupe window (12 h of the simulated day: 20 s of wall-clock time at
# 2,160x) longer than a fault's outage: a play retried after a lost answer
# then lands inside it, and its answer tells whether the lost attempt
# counted (a duplicate: it did; counted: it did not).
export SIM_DEDUPE_WINDOW_SECONDS=${SIM_DEDUPE_WINDOW_SECONDS:-43200}
all=(replica-kill redis-restart postgres-restart gateway-term lease-kill network-cut)
faults=("$@")
[ ${#faults[@]} -gt 0 ] || faults=("${all[@]}")
for f in "${faults[@]}"; do
  [[ " ${all[*]} " == *" $f "* ]] || { echo "unknown fault $f (one of: ${all[*]})" >&2; exit 2; }
done

now_ms() { date +%s%3N; }

# The first container of a compose service.
container() { sim_compose ps -q "$1" | head -1; }

# Plays answered so far by the running streaming replicas.
plays_so_far() {
  local id sum=0 n
  for id in $(sim_compose ps -q streaming-service); do
    n=$(docker exec "$id" curl -fsS http://127.0.0.1:9465/metrics 2>/dev/null |
      awk '/^streaming_plays_total/ {s += $2} END {print s + 0}') || n=0
    sum=$((sum + ${n:-0}))
  done
  echo "$sum"
}

# Waits (at most $2 s) until the replicas answered $1 plays: under load.
under_load() {
  local t0=$SECONDS
  until [ "$(plays_so_far)" -ge "$1" ]; do
    [ $((SECONDS - t0)) -lt "$2" ] || { echo "no load after $2 s" >&2; return 1; }
    sleep 0.5
  done
}

# Waits (at most $2 s) until container $1 is healthy.
healthy() {
  local t0=$SECONDS
  until [ "$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null)" = healthy ]; do
    [ $((SECONDS - t0)) -lt "$2" ] || { echo "$1 not healthy after $2 s" >&2; return 1; }
    sleep 0.5
  done
}

psql_in() { # database, sql
  docker exec "$(container postgres)" psql -U ssp -d "$1" -tAc "$2"
}

# Unix ms of the first log line of container $1 matching $2 after Unix ms
# $3; empty when there is none.
logged_at() {
  local line
  line=$(docker logs -t "$1" 2>&1 | grep -F "$2" | while read -r ts rest; do
    ms=$(date -d "$ts" +%s%3N)
    [ "$ms" -ge "$3" ] && { echo "$ms"; break; }
  done) || true
  echo "$line"
}

# Whether any of containers $2… logged $1.
any_logged() {
  local what=$1 id
  shift
  for id in "$@"; do
    # Not grep -q: under pipefail, docker logs killed by the closed pipe
    # would fail the pipeline after a match.
    docker logs "$id" 2>&1 | grep -F "$what" >/dev/null && return 0
  done
  return 1
}

inject_ms=0 recovered_ms=0 note="" expect_acted=any

fault_replica-kill() {
  under_load 300 120 || return 1
  local victim plays
  victim=$(container streaming-service)
  plays=$(docker exec "$victim" curl -fsS http://127.0.0.1:9465/metrics |
    awk '/^streaming_plays_total/ {s += $2} END {print s + 0}')
  inject_ms=$(now_ms)
  docker kill "$victim" >/dev/null || return 1
  note="killed $(docker inspect -f '{{.Name}}' "$victim" | tr -d /) after it answered $plays plays"
}

fault_redis-restart() {
  under_load 300 120 || return 1
  local redis
  redis=$(container redis)
  inject_ms=$(now_ms)
  docker kill -s KILL "$redis" >/dev/null || return 1
  sleep 2
  docker start "$redis" >/dev/null || return 1
  healthy "$redis" 60 || return 1
  recovered_ms=$(now_ms)
  note="Redis SIGKILLed, started 2 s later (appendfsync ${REDIS_APPENDFSYNC:-always})"
}

fault_postgres-restart() {
  under_load 300 120 || return 1
  local pg
  pg=$(container postgres)
  inject_ms=$(now_ms)
  docker restart -t 10 "$pg" >/dev/null || return 1
  healthy "$pg" 60 || return 1
  recovered_ms=$(now_ms)
  note="PostgreSQL restarted (fast shutdown) during write-backs every second"
}

fault_gateway-term() {
  under_load 300 120 || return 1
  local gw
  gw=$(container gateway)
  inject_ms=$(now_ms)
  docker stop -t 30 "$gw" >/dev/null || return 1
  local stopped_ms
  stopped_ms=$(now_ms)
  docker start "$gw" >/dev/null || return 1
  healthy "$gw" 60 || return 1
  recovered_ms=$(now_ms)
  expect_acted=0
  note="gateway stopped by SIGTERM in $(((stopped_ms - inject_ms))) ms, started again"
}

# Ends the session holding the lease-kill's table lock.
unlock() {
  psql_in ssp_revenue "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'chaos-lock'" >/dev/null
}

fault_lease-kill() {
  local pg
  pg=$(container postgres)
  # Any settlement that reaches its transaction waits on this lock.
  docker exec -d "$pg" psql -U ssp -d ssp_revenue -v ON_ERROR_STOP=1 \
    -c "SET application_name = 'chaos-lock'" -c "BEGIN" \
    -c "LOCK TABLE daily_stats IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(900)"
  local t0=$SECONDS ip=""
  until [ -n "$ip" ]; do
    [ $((SECONDS - t0)) -lt 400 ] || { echo "no settlement run reached its transaction" >&2; unlock; return 1; }
    sleep 0.5
    ip=$(psql_in ssp_revenue "SELECT host(client_addr) FROM pg_stat_activity WHERE datname = 'ssp_revenue' AND wait_event_type = 'Lock' AND application_name <> 'chaos-lock' LIMIT 1")
  done
  local id holder=""
  for id in $(sim_compose ps -q revenue-service); do
    if docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$id" | grep -qw "$ip"; then
      holder=$id
    fi
  done
  [ -n "$holder" ] || { echo "no revenue replica has address $ip" >&2; unlock; return 1; }
  inject_ms=$(now_ms)
  docker kill "$holder" >/dev/null || { unlock; return 1; }
  unlock
  local other
  for id in $(sim_compose ps -q revenue-service); do [ "$id" = "$holder" ] || other=$id; done
  local t1=$SECONDS
  until [ -n "$(logged_at "$other" 'settlement run succeeded' "$inject_ms")" ]; do
    [ $((SECONDS - t1)) -lt 300 ] || { echo "the other replica did not finish the run" >&2; return 1; }
    sleep 0.5
  done
  recovered_ms=$(logged_at "$other" 'settlement run succeeded' "$inject_ms")
  note="killed $(docker inspect -f '{{.Name}}' "$holder" | tr -d /) waiting inside its run's transaction; $(docker inspect -f '{{.Name}}' "$other" | tr -d /) finished the run"
}

fault_network-cut() {
  local net=${COMPOSE_PROJECT_NAME}_counts id t0=$SECONDS
  local -a revenue
  mapfile -t revenue < <(sim_compose ps -q revenue-service)
  # The day's settlement starts pulling (the watermark first).
  until any_logged 'settlement run started' "${revenue[@]}"; do
    [ $((SECONDS - t0)) -lt 400 ] || { echo "no settlement run started" >&2; return 1; }
    sleep 0.2
  done
  inject_ms=$(now_ms)
  for id in "${revenue[@]}"; do docker network disconnect "$net" "$id" || return 1; done
  sleep 15
  for id in "${revenue[@]}"; do docker network connect "$net" "$id" || return 1; done
  local restored_ms t1=$SECONDS found=""
  restored_ms=$(now_ms)
  until [ -n "$found" ]; do
    [ $((SECONDS - t1)) -lt 300 ] || { echo "no run succeeded after the network came back" >&2; return 1; }
    sleep 0.5
    for id in "${revenue[@]}"; do
      found=$(logged_at "$id" 'settlement run succeeded' "$restored_ms")
      [ -n "$found" ] && break
    done
  done
  recovered_ms=$found
  note="counts network cut for 15 s at the settlement's first pull; a run succeeded $(((found - restored_ms) / 1000)) s after it came back"
}

results=()
status=0
trap 'down >/dev/null 2>&1 || true' EXIT
for fault in "${faults[@]}"; do
  echo "== $fault"
  t0=$SECONDS
  inject_ms=0 recovered_ms=0 note="" expect_acted=any
  log=$out/$fault.log
  sim_up >"$out/$fault.up.log" 2>&1 || { cat "$out/$fault.up.log" >&2; exit 1; }
  sim_run --retry-failures "$retry_seconds" >"$log" 2>&1 &
  sim=$!
  ok=1
  "fault_$fault" || ok=0
  sim_status=0
  wait "$sim" || sim_status=$?
  [ "$ok" = 1 ] || { echo "the fault could not be injected as stated" >&2; sim_status=1; }
  differences=$(sed -n 's/.*: \([0-9]*\) differences$/\1/p' "$log" | tail -1)
  failed=? retried=? refused=0 answered=0 broken=0 inferred=? uncertain=? first_ms=0 last_ms=0
  figures=$(grep '^FAILURES ' "$log" | tail -1 | cut -d' ' -f2-) || true
  for kv in $figures; do
    case ${kv%%=*} in
      failed | retried | refused | answered | broken | inferred | uncertain | first_ms | last_ms)
        printf -v "${kv%%=*}" '%s' "${kv#*=}" ;;
    esac
  done
  first=$first_ms last=$last_ms
  window="none"
  [ "${first:-0}" -gt 0 ] && window="$(((first - inject_ms) / 1000))..$(((last - inject_ms) / 1000)) s"
  recovery="-"
  [ "$recovered_ms" -gt 0 ] && recovery="$(((recovered_ms - inject_ms) / 1000)) s"
  [ "${first:-0}" -gt 0 ] && [ "$recovered_ms" = 0 ] && recovery="$(((last - inject_ms) / 1000)) s (last failure)"
  verdict=pass
  [ "$sim_status" = 0 ] && [ "${differences:-x}" = 0 ] || verdict=FAIL
  if [ "$expect_acted" != any ]; then
    # A lost attempt that had been acted on shows in its retry's answer.
    if [ "$inferred" != "$expect_acted" ] || [ "$uncertain" != 0 ]; then
      verdict=FAIL
      note="$note; $inferred lost attempts had been acted on, $uncertain uncertain (expected none)"
    else
      note="$note; none of the $((refused + answered + broken)) failed attempts had been acted on"
    fi
  fi
  [ "$verdict" = pass ] || status=1
  line=$(printf '%-17s %-4s  differences %s, failed %s, retried %s (attempts: %s refused, %s answered 5xx, %s broken; window %s), inferred %s, uncertain %s, recovery %s, %s s' \
    "$fault" "$verdict" "${differences:-?}" "$failed" "$retried" "$refused" "$answered" "$broken" "$window" "$inferred" "$uncertain" "$recovery" "$((SECONDS - t0))")
  echo "$line"
  echo "   $note"
  results+=("$line" "   $note")
  grep -E '^(DIFFERENCE|settlement run .* queueing)' "$log" | head -20 || true
  [ "$verdict" = pass ] || tail -30 "$log"
  sim_compose logs --no-color --timestamps >"$out/$fault.services.log" 2>&1 || true
  down >/dev/null 2>&1 || true
done
echo
echo "== chaos: ${#faults[@]} faults"
printf '%s\n' "${results[@]}"
exit $status
