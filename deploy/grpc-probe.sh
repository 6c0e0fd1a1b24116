#!/usr/bin/env bash
# Starts the user service on its own (SQLite in a temporary directory), then
# probes it with a client that is not ours: Python grpcio calls
# grpc.health.v1.Health/Check and lists the services through server
# reflection. CI runs this; it needs python3 and the PyPI registry.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/probe-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r deploy/requirements-probe.txt

cargo build --quiet -p user-service
data=$(mktemp -d)
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATA_DIR="$data" USER_GRPC_ADDR="127.0.0.1:$port" SERVICE_CREDENTIAL=probe-credential \
  USER_GENERATE_SIGNING_KEY=true target/debug/user-service >"$data/user-service.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT

"$venv/bin/python" deploy/grpc_probe.py "127.0.0.1:$port" user.v1.UserService
