#!/usr/bin/env bash
# Every image the compose stack runs, built on this machine with no image
# registry (issue 20). Reuses what is already built:
#
#   debian:bookworm-slim   debootstrap --variant=minbase, then docker import
#   ssp/postgres:15        Debian's PostgreSQL 15; databases made on first start
#   ssp/redis:7            Debian's Redis 7; append-only file on
#   ssp/runtime            the base + CA certificates, curl, user ssp
#   ssp/<service>          user-service, streaming-service, revenue-service,
#                          gateway: release binaries built on the host
#   ssp/stack              the stack binary (only for the simulation's
#                          development clock, deploy/compose.sim.yml)
#
# Hosts with a registry can still use the cargo-chef build, deploy/Dockerfile.
# The Docker engine (Debian's docker.io) is installed and started when absent.
# SSP_PROFILE (release, the default, or debug) picks target/<profile>;
# SSP_SKIP_CARGO=1 packages the binaries already there.
set -euo pipefail
cd "$(dirname "$0")/.."
# The classic builder: BuildKit would fetch its Dockerfile frontend from a registry.
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0

engine() {
  if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null || ! command -v docker-compose >/dev/null; then
    apt-get install -y -q docker.io docker-compose debootstrap >/dev/null ||
      { apt-get update -q && apt-get install -y -q docker.io docker-compose debootstrap >/dev/null; }
  fi
  if ! docker info >/dev/null 2>&1; then
    echo "starting dockerd (vfs storage)"
    nohup dockerd --storage-driver=vfs >/var/log/ssp-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null
  fi
}

have() { docker image inspect "$1" >/dev/null 2>&1; }

build() { # tag, dockerfile, context
  local t0=$SECONDS log
  log=$(mktemp)
  docker build -t "$1" -f "$2" "$3" >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; return 1; }
  rm -f "$log"
  echo "built $1 in $((SECONDS - t0)) s"
}

base() {
  have debian:bookworm-slim && return 0
  local t0=$SECONDS root
  root=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  chmod 755 "$root" # mktemp made it 0700: it becomes the image's /
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
  rm -rf "$root"
  echo "built debian:bookworm-slim (debootstrap) in $((SECONDS - t0)) s"
}

services() {
  local profile=${SSP_PROFILE:-release} flag=""
  [ "$profile" = release ] && flag=--release
  [ -n "${SSP_SKIP_CARGO:-}" ] ||
    cargo build $flag -q -p user-service -p streaming-service -p revenue-service -p gateway -p stack
  local bin sum context
  for bin in user-service streaming-service revenue-service gateway stack; do
    sum=$(sha256sum "target/$profile/$bin" | cut -c1-64)
    if [ "$(docker image inspect -f '{{ index .Config.Labels "ssp.binary-sha256" }}' "ssp/$bin" 2>/dev/null)" = "$sum" ]; then
      continue
    fi
    context=target/images/$bin
    rm -rf "$context" && mkdir -p "$context"
    # Without the line tables (kept in target/ for local backtraces):
    # a third of the size.
    objcopy --strip-debug "target/$profile/$bin" "$context/$bin"
    printf 'FROM ssp/runtime\nCOPY %s /usr/local/bin/%s\nLABEL ssp.binary-sha256=%s\nENTRYPOINT ["/usr/local/bin/%s"]\n' \
      "$bin" "$bin" "$sum" "$bin" >"$context/Dockerfile"
    build "ssp/$bin" "$context/Dockerfile" "$context"
  done
  docker image prune -f >/dev/null
}

engine
base
have ssp/postgres:15 || build ssp/postgres:15 deploy/images/postgres.Dockerfile deploy/images
have ssp/redis:7 || build ssp/redis:7 deploy/images/redis.Dockerfile deploy/images
have ssp/runtime || build ssp/runtime deploy/images/runtime.Dockerfile deploy/images
services
docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' |
  grep -E '^(debian:bookworm-slim|ssp/)' | sort | awk -F'\t' '{printf "  %-28s %s\n", $1, $2}'
