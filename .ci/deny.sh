#!/usr/bin/env bash
# `cargo deny check` (deny.toml): licences, bans, sources and RustSec
# advisories. cargo-deny fetches the advisory database from GitHub; where
# GitHub is not reachable (this machine reaches package registries only),
# the newest snapshot of rustsec/advisory-db on the machine is used instead
# (ADVISORY_DB_MIRROR, by default the tool library's mirror), copied into
# cargo-deny's cache and checked without fetching. With neither, the check
# fails: advisories are never skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deny >/dev/null; then
  cargo install cargo-deny --locked --version 0.20.2
fi

db_root="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
# cargo-deny's directory for https://github.com/RustSec/advisory-db.
db="$db_root/advisory-db-3157b0e258782691"
mirror="${ADVISORY_DB_MIRROR:-/work/.mirror/rustsec+advisory-db/repo}"

if git ls-remote --exit-code https://github.com/RustSec/advisory-db HEAD >/dev/null 2>&1; then
  exec cargo deny check --hide-inclusion-graph
fi
if [ -d "$mirror" ]; then
  # --offline keeps cargo-deny from fetching the advisory database, and
  # cargo metadata from downloading too: every crate of every target is
  # fetched first, from crates.io, which is reachable.
  cargo fetch --locked --quiet
  rm -rf "$db" && mkdir -p "$db_root"
  git clone -q --depth=1 --branch main "file://$mirror" "$db"
  echo "advisories: GitHub unreachable; RustSec snapshot of $(git -C "$db" log -1 --format=%cs) from $mirror"
  exec cargo deny --offline check --hide-inclusion-graph
fi
echo "advisories: GitHub unreachable and no snapshot at $mirror (set ADVISORY_DB_MIRROR)" >&2
exit 1
