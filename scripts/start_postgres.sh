#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the test suite and print its SQLAlchemy URL on stdout.
#
#   url=$(scripts/start_postgres.sh)          # install if needed, start (idempotent), print URL
#   export DAYZERO_TEST_POSTGRES_URL="$url"
#   scripts/start_postgres.sh stop            # stop it again
#
# The server runs as the `postgres` OS user (initdb refuses root) straight from initdb + pg_ctl:
# no systemd, no cluster config under /etc. It listens on 127.0.0.1 only, on DAYZERO_PG_PORT
# (default 55432, or the next free port), with its data and socket in DAYZERO_PG_DIR.
# Installing Debian's `postgresql` package needs root; a non-root user who already has the
# PostgreSQL binaries runs the server as themselves.
set -euo pipefail

DATA_DIR=${DAYZERO_PG_DIR:-/tmp/dayzero-postgres}
PORT=${DAYZERO_PG_PORT:-55432}
DB_NAME=dayzero_test
DB_USER=dayzero
DB_PASSWORD=dayzero

log() { echo "start_postgres: $*" >&2; }

if [ "$(id -u)" -eq 0 ]; then
    AS_SERVER=(runuser -u postgres --)
else
    AS_SERVER=()
fi

find_bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
        echo "$dir"
    elif command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    fi
}

BINDIR=$(find_bindir)

if [ "${1:-start}" = "stop" ]; then
    if [ -n "$BINDIR" ] && [ -f "$DATA_DIR/pgdata/postmaster.pid" ]; then
        "${AS_SERVER[@]}" "$BINDIR/pg_ctl" -D "$DATA_DIR/pgdata" stop -m fast >&2 || true
    fi
    exit 0
fi

if [ -z "$BINDIR" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "PostgreSQL is not installed; run this script as root to apt-get install it"
        exit 1
    fi
    log "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    BINDIR=$(find_bindir)
    if [ -z "$BINDIR" ]; then
        log "postgresql installed but initdb not found under /usr/lib/postgresql/*/bin"
        exit 1
    fi
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

PGDATA="$DATA_DIR/pgdata"
mkdir -p "$DATA_DIR"
if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$DATA_DIR"
fi

if [ ! -f "$PGDATA/PG_VERSION" ]; then
    log "initdb in $PGDATA"
    "${AS_SERVER[@]}" "$BINDIR/initdb" -D "$PGDATA" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 --no-instructions >/dev/null
fi

if "${AS_SERVER[@]}" "$BINDIR/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    PORT=$(cat "$DATA_DIR/port")
    log "already running on port $PORT"
else
    while port_in_use "$PORT"; do
        PORT=$((PORT + 1))
    done
    echo "$PORT" >"$DATA_DIR/port"
    log "starting on 127.0.0.1:$PORT"
    "${AS_SERVER[@]}" "$BINDIR/pg_ctl" -D "$PGDATA" -l "$DATA_DIR/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA_DIR -c fsync=on" >&2
fi

psql_admin() {
    "${AS_SERVER[@]}" "$BINDIR/psql" -h "$DATA_DIR" -p "$PORT" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 -qtA "$@"
}

if [ -z "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" ]; then
    psql_admin -c "CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD'" >/dev/null
fi
if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ]; then
    psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >/dev/null
fi

echo "postgresql+psycopg://$DB_USER:$DB_PASSWORD@127.0.0.1:$PORT/$DB_NAME"
