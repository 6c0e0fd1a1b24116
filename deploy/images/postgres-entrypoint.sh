#!/bin/sh
# First start: initdb, the superuser POSTGRES_USER with POSTGRES_PASSWORD,
# password logins from the network, and the platform's databases. Every
# start: PostgreSQL in the foreground, listening on every address.
set -eu
: "${POSTGRES_USER:=ssp}" "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "host all all ::/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
  for db in ${POSTGRES_DATABASES:-ssp_users ssp_streaming ssp_revenue}; do
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -q \
      -c "CREATE DATABASE $db OWNER \"$POSTGRES_USER\""
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "initialised $PGDATA"
fi
exec postgres -c listen_addresses='*' "$@"
