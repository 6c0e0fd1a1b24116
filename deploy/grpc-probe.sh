#!/usr/bin/env bash
# Starts the user, streaming and revenue services on their own (SQLite in a
# temporary directory, in-process counters), then probes each with a client
# that is not ours: Python grpcio calls grpc.health.v1.Health/Check and lists
# the services through server reflection. CI runs this; it needs python3 and
# the PyPI registry.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/probe-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r deploy/requirements-probe.txt

cargo build --quiet -p user-service -p streaming-service -p revenue-service
data=$(mktemp -d)
free_port() {
  "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
user_port=$(free_port)
streaming_port=$(free_port)
revenue_port=$(free_port)
export DATA_DIR="$data" SERVICE_CREDENTIAL=probe-credential
USER_GRPC_ADDR="127.0.0.1:$user_port" USER_GENERATE_SIGNING_KEY=true \
  target/debug/user-service >"$data/user-service.log" 2>&1 &
user_pid=$!
STREAMING_GRPC_ADDR="127.0.0.1:$streaming_port" STREAMING_USER_SERVICE_URL="http://127.0.0.1:$user_port" \
  target/debug/streaming-service >"$data/streaming-service.log" 2>&1 &
streaming_pid=$!
REVENUE_GRPC_ADDR="127.0.0.1:$revenue_port" REVENUE_USER_SERVICE_URL="http://127.0.0.1:$user_port" \
  REVENUE_STREAMING_SERVICE_URL="http://127.0.0.1:$streaming_port" \
  target/debug/revenue-service >"$data/revenue-service.log" 2>&1 &
revenue_pid=$!
trap 'kill "$user_pid" "$streaming_pid" "$revenue_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"' EXIT

"$venv/bin/python" deploy/grpc_probe.py "127.0.0.1:$user_port" user.v1.UserService
"$venv/bin/python" deploy/grpc_probe.py "127.0.0.1:$streaming_port" streaming.v1.StreamingService
"$venv/bin/python" deploy/grpc_probe.py "127.0.0.1:$revenue_port" revenue.v1.RevenueService
