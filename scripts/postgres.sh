#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the store tests and benchmarks.
#
#   scripts/postgres.sh start [STATE_DIR]   install PostgreSQL from Debian if missing, initdb a
#                                           data dir in STATE_DIR, start it on a free port, create
#                                           role and database; prints
#                                           PUSHWIRE_TEST_POSTGRES_DSN=postgresql://... on stdout
#                                           (also written to STATE_DIR/dsn)
#   scripts/postgres.sh stop [STATE_DIR]    stop the server and delete STATE_DIR
#   scripts/postgres.sh status [STATE_DIR]  exit 0 and print the DSN if it is running
#
# It runs without fsync (tests need no crash safety); PUSHWIRE_PG_DURABLE=1 keeps PostgreSQL's
# durable defaults, for benchmarks that compare stores.
#
# STATE_DIR defaults to $PUSHWIRE_POSTGRES_STATE or /tmp/pushwire-postgres-$UID. `start` is
# idempotent: a server already running from STATE_DIR is reused (its DSN printed again).
# As root (CI), the server runs as the `postgres` user (PostgreSQL refuses to run as root);
# otherwise as the current user. Durability is switched off: the data is thrown away.
# Progress goes to stderr, so `eval "$(scripts/postgres.sh start)"` sets the variable.
set -euo pipefail

command=${1:-start}
state=${2:-${PUSHWIRE_POSTGRES_STATE:-/tmp/pushwire-postgres-$(id -u)}}
data="$state/data"
role=pushwire
database=pushwire_test

say() { printf 'postgres.sh: %s\n' "$*" >&2; }

# The state dir is deleted on stop and rebuilt on start: only accept a new or empty
# directory, or one this script made (stale ones included: a killed server leaves data/).
if [[ -e "$state" && ! -f "$state/dsn" && ! -f "$state/data/PG_VERSION" &&
    -n "$(ls -A "$state" 2>/dev/null)" ]]; then
    say "refusing to use $state: not empty and not a state dir of this script"
    exit 2
fi

find_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return 0
        fi
    done
    local initdb
    if initdb=$(command -v initdb) && command -v pg_ctl >/dev/null; then
        dirname "$(readlink -f "$initdb")"
        return 0
    fi
    return 1
}

install_postgres() {
    if [[ $(id -u) -ne 0 ]]; then
        say "PostgreSQL is not installed; as root run: apt-get install -y postgresql"
        exit 1
    fi
    say "installing PostgreSQL from Debian (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
}

# Runs a command as the server's owner.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

running() {
    [[ -f "$state/dsn" && -f "$data/postmaster.pid" ]] || return 1
    local bindir
    bindir=$(find_bindir) || return 1
    as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

start() {
    if running; then
        say "already running ($state)"
        echo "PUSHWIRE_TEST_POSTGRES_DSN=$(cat "$state/dsn")"
        return 0
    fi
    local bindir
    bindir=$(find_bindir) || {
        install_postgres
        # Debian's postgresql package puts the server programs in /usr/lib/postgresql/N/bin.
        bindir=$(find_bindir) || {
            say "PostgreSQL was installed but no initdb/pg_ctl found in /usr/lib/postgresql/*/bin"
            exit 1
        }
    }
    # A stale state dir (server killed, machine rebooted) is rebuilt from scratch.
    rm -rf "$state"
    mkdir -p "$data"
    chmod 755 "$state"
    chmod 700 "$data"
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$state" postgres
        chown -R postgres: "$state"
    fi
    say "initdb ($bindir) in $data"
    as_owner "$bindir/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --no-locale >"$state/initdb.log" 2>&1 || {
        cat "$state/initdb.log" >&2
        exit 1
    }
    local port attempt durability
    # Tests don't need crash safety; benchmarks that compare stores do
    # (PUSHWIRE_PG_DURABLE=1 keeps PostgreSQL's defaults: fsync and synchronous commit on).
    durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    [[ ${PUSHWIRE_PG_DURABLE:-0} == 1 ]] && durability=""
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        if as_owner "$bindir/pg_ctl" -D "$data" -l "$state/server.log" -w -t 60 start -o \
            "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$state \
             $durability -c max_connections=200" >/dev/null; then
            break
        fi
        say "could not start on port $port (attempt $attempt)"
        [[ $attempt -lt 5 ]] || {
            tail -n 20 "$state/server.log" >&2
            exit 1
        }
    done
    local password
    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$state" -p "$port" -U postgres \
        -d postgres >/dev/null <<SQL
CREATE ROLE $role LOGIN PASSWORD '$password';
CREATE DATABASE $database OWNER $role;
SQL
    local dsn="postgresql://$role:$password@127.0.0.1:$port/$database"
    # The DSN holds the password: readable by the caller only.
    (
        umask 077
        echo "$dsn" >"$state/dsn"
        echo "PUSHWIRE_TEST_POSTGRES_DSN=$dsn" >"$state/env"
    )
    say "running on 127.0.0.1:$port (state $state)"
    echo "PUSHWIRE_TEST_POSTGRES_DSN=$dsn"
}

stop() {
    if [[ -d "$data" ]]; then
        local bindir
        if bindir=$(find_bindir) && [[ -f "$data/postmaster.pid" ]]; then
            as_owner "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
    fi
    rm -rf "$state"
    say "stopped ($state)"
}

case "$command" in
start) start ;;
stop) stop ;;
status)
    if running; then
        echo "PUSHWIRE_TEST_POSTGRES_DSN=$(cat "$state/dsn")"
    else
        exit 1
    fi
    ;;
*)
    echo "usage: $0 start|stop|status [STATE_DIR]" >&2
    exit 2
    ;;
esac
