#!/bin/sh
# Runs once, on the PostgreSQL container's first start (docker-entrypoint-initdb.d):
# one database per service (SPEC §1: no service reads another's tables),
# each owned by the platform's role.
set -eu
for db in ssp_users ssp_streaming ssp_revenue; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -c "CREATE DATABASE $db OWNER \"$POSTGRES_USER\""
done
