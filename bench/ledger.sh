#!/usr/bin/env bash
# Benchmark: the 5,000,000-video day settled with the ledger (this build)
# and without it (this same commit with the ledger's two posting functions,
# `ledger::post` and `ledger::post_earnings_of_day`, made to post nothing),
# alternately in one session: A B B A A B …. Everything else (pull,
# pricing, rows, roll-ups, leases, day states) is the same code, so the
# ratio is the ledger's own price in the day.
#
# The build without the ledger is made in a git worktree of HEAD with a
# target directory of its own (target/without-ledger, first filled with a
# copy of target/release so that only the workspace's crates compile:
# sharing one directory would mix the two trees' binaries, which cargo
# names alike). Nothing of it is committed: the two functions are edited
# in the worktree only.
#
#   [FLOOR=1] bash bench/ledger.sh [videos=5000000] [rounds=2]
#
# FLOOR=1 also measures issue 19's COPY floor after each run with the
# ledger (bench/settle.sh); runs without the ledger never do.
set -euo pipefail
cd "$(dirname "$0")/.."
videos=${1:-5000000}
rounds=${2:-2}
root=$(pwd)
# Both builds are of HEAD: uncommitted changes would be in one only.
git diff --quiet HEAD -- . ':!docs' ||
  { echo "bench/ledger.sh: commit or stash your changes first (both builds are of HEAD)" >&2; exit 1; }
aside=$(mktemp -d)
trees=$(mktemp -d)
tree=$trees/tree
cleanup() { git worktree remove --force "$tree" 2>/dev/null || true; rm -rf "$aside" "$trees"; }
trap cleanup EXIT
cargo build --release --quiet -p user-service -p streaming-service -p revenue-service -p gateway
git worktree add --detach --quiet "$tree" HEAD
# The ledger's posting functions return at once, having posted nothing.
perl -0pi -e 's/(pub async fn post<C: ConnectionTrait>\(.*?\) -> Result<u64, DbErr> \{)/$1\n    if true {\n        return Ok(0);\n    }/s;
  s/(pub async fn post_earnings_of_day<C: ConnectionTrait>\(.*?\) -> Result<u64, DbErr> \{)/$1\n    if true {\n        return Ok(0);\n    }/s' \
  "$tree/revenue-service/src/ledger.rs"
[ "$(grep -c '^    if true {$' "$tree/revenue-service/src/ledger.rs")" = 2 ] ||
  { echo "bench/ledger.sh: could not disable the ledger's posting in the worktree" >&2; exit 1; }
if [ ! -d target/without-ledger/release ]; then
  mkdir -p target/without-ledger && cp -a target/release target/without-ledger/
fi
(cd "$tree" && CARGO_TARGET_DIR="$root/target/without-ledger" cargo build --release --quiet \
  -p user-service -p streaming-service -p revenue-service -p gateway)
for b in user-service streaming-service revenue-service gateway; do cp "target/without-ledger/release/$b" "$aside/"; done
without() {
  echo "######## round $round: without the ledger (HEAD $(git rev-parse --short HEAD), posting disabled)"
  FLOOR=0 BIN_DIR="$aside" bash bench/settle.sh "$videos"
}
with() {
  echo "######## round $round: with the ledger ($(git rev-parse --short HEAD))"
  FLOOR=${FLOOR:-0} BIN_DIR="$root/target/release" bash bench/settle.sh "$videos"
}
# The order alternates (A B, B A, …): whatever one run leaves the machine
# (dirty pages, a checkpoint due) falls on each build as often.
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then without; with; else with; without; fi
done
