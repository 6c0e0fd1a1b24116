#!/usr/bin/env bash
# The test command of README.md (and of CI): every test of the workspace,
# with cargo-nextest (one process per test). On a fresh machine it first
# installs what it needs and can: cargo-nextest (from crates.io, once),
# and it starts the machine's PostgreSQL (127.0.0.1:5432) and Redis
# (127.0.0.1:6379) if they are installed but stopped. Extra arguments go
# to `cargo nextest run` (e.g. `scripts/test.sh -E 'test(settle)'`).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest is missing: installing it (once)"
  cargo install cargo-nextest --locked
fi

if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
if command -v redis-cli >/dev/null && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
fi

exec cargo nextest run --workspace "$@"
