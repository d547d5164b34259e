#!/bin/sh
# Make the cluster (first start only), its user and database, then run PostgreSQL in the
# foreground on 127.0.0.1:$PGPORT. Password auth over TCP and UTF8, as the upstream image does
# (minbase has no locales: without --encoding the cluster would be SQL_ASCII).
set -eu
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}" "${PGPORT:=5432}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" --encoding=UTF8 --no-locale --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  if [ "$POSTGRES_DB" != "postgres" ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\"" | postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
fi
exec postgres -D "$PGDATA" -c listen_addresses=127.0.0.1 -c port="$PGPORT" -c unix_socket_directories=/tmp
