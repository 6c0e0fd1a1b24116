#!/usr/bin/env bash
# Benchmark: the 5,000,000-video day settled with the ledger (this build)
# and without it (the build before the ledger, commit 5489819), alternately
# in one session: A B B A A B …. Builds the earlier commit in a git worktree with
# a target directory of its own (target/before-ledger: sharing one would mix
# the two trees' workspace crates, which cargo names alike).
#
#   bash bench/ledger.sh [videos=5000000] [rounds=2]
set -euo pipefail
cd "$(dirname "$0")/.."
videos=${1:-5000000}
rounds=${2:-2}
before=${BEFORE_LEDGER_COMMIT:-5489819}
root=$(pwd)
aside=$(mktemp -d)
tree=$(mktemp -d)/tree
cleanup() { git worktree remove --force "$tree" 2>/dev/null || true; rm -rf "$aside"; }
trap cleanup EXIT
git worktree add --detach --quiet "$tree" "$before"
(cd "$tree" && CARGO_TARGET_DIR="$root/target/before-ledger" cargo build --release --quiet \
  -p user-service -p streaming-service -p revenue-service -p gateway)
for b in user-service streaming-service revenue-service gateway; do cp "target/before-ledger/release/$b" "$aside/"; done
cargo build --release --quiet -p user-service -p streaming-service -p revenue-service -p gateway
without() {
  echo "######## round $round: without the ledger ($before)"
  BIN_DIR="$aside" bash bench/settle.sh "$videos"
}
with() {
  echo "######## round $round: with the ledger ($(git rev-parse --short HEAD))"
  BIN_DIR="$root/target/release" bash bench/settle.sh "$videos"
}
# The order alternates (A B, B A, …): whatever one run leaves the machine
# (dirty pages, a checkpoint due) falls on each build as often.
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then without; with; else with; without; fi
done
