#!/usr/bin/env bash
# Bad input across the whole API: schemathesis (PyPI) generates requests from
# the gateway's /openapi.json, valid and invalid, and fails on any 5xx
# answer, any answer that breaks the documented schema, status codes or
# content types. It runs three times: signed in as a viewer, as a creator
# and as the admin. Needs a running gateway (deploy/stack.sh up) whose auth
# rate limit is off (AUTH_RATE_LIMIT_PER_MINUTE=0).
#
#   deploy/schemathesis.sh           each role for SCHEMATHESIS_MAX_TIME s (default 60)
#
# Settings: GATEWAY_ADDR (127.0.0.1:18080), ADMIN_EMAIL, ADMIN_PASSWORD,
# SCHEMATHESIS_MAX_TIME, SCHEMATHESIS_SEED (fixed by default: reproducible).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/schemathesis-venv
[ -x "$venv/bin/st" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r deploy/requirements-schemathesis.txt

gateway=http://${GATEWAY_ADDR:-127.0.0.1:18080}
max_time=${SCHEMATHESIS_MAX_TIME:-60}
seed=${SCHEMATHESIS_SEED:-20261122}
tag=$(date +%s%N)

token() { # email, password
  curl -fsS -X POST "$gateway/api/v1/auth/login" -H 'content-type: application/json' \
    --json "{\"email\":\"$1\",\"password\":\"$2\"}" |
    "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
signup() { # role
  curl -fsS -o /dev/null -X POST "$gateway/api/v1/auth/signup" -H 'content-type: application/json' \
    --json "{\"email\":\"st-$1-$tag@example.com\",\"password\":\"schemathesis\",\"display_name\":\"st $1\",\"role\":\"$1\"}"
  token "st-$1-$tag@example.com" schemathesis
}

# One worker: with two, Hypothesis parses lambda sources with CPython 3.11's
# `ast` from two threads at once and sometimes fails with "AST constructor
# recursion depth mismatch", an error of the tool, not of the API.
status=0
for role in viewer creator admin; do
  if [ "$role" = admin ]; then
    access=$(token "${ADMIN_EMAIL:-admin@example.com}" "${ADMIN_PASSWORD:-admin-password}")
  else
    access=$(signup "$role")
  fi
  echo "== schemathesis as $role (${max_time}s)"
  "$venv/bin/st" run "$gateway/openapi.json" \
    -H "Authorization: Bearer $access" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
    --max-time "$max_time" --workers 1 --seed "$seed" --warnings off || status=$?
done
exit $status
