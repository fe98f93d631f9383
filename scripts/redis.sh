#!/usr/bin/env bash
# A throwaway Redis server on 127.0.0.1 for the job-queue tests and benchmarks.
#
#   scripts/redis.sh start [STATE_DIR]   install redis-server from Debian if missing, start it
#                                        on a free port with its files in STATE_DIR; prints
#                                        PUSHWIRE_TEST_REDIS_URL=redis://127.0.0.1:PORT/0 on
#                                        stdout (also written to STATE_DIR/url)
#   scripts/redis.sh stop [STATE_DIR]    stop the server and delete STATE_DIR
#   scripts/redis.sh status [STATE_DIR]  exit 0 and print the URL if it is running
#
# STATE_DIR defaults to $PUSHWIRE_REDIS_STATE or /tmp/pushwire-redis-$UID. `start` is
# idempotent: a server already running from STATE_DIR is reused (its URL printed again).
# Persistence is switched off (no RDB snapshots, no AOF): the data is thrown away.
# Progress goes to stderr, so `export "$(scripts/redis.sh start)"` sets the variable.
set -euo pipefail

command=${1:-start}
state=${2:-${PUSHWIRE_REDIS_STATE:-/tmp/pushwire-redis-$(id -u)}}

say() { printf 'redis.sh: %s\n' "$*" >&2; }

# The state dir is deleted on stop: only accept a new or empty directory, or one this
# script made (it holds `url` or `redis.conf`).
if [[ -e "$state" && ! -f "$state/url" && ! -f "$state/redis.conf" &&
    -n "$(ls -A "$state" 2>/dev/null)" ]]; then
    say "refusing to use $state: not empty and not a state dir of this script"
    exit 2
fi

install_redis() {
    if [[ $(id -u) -ne 0 ]]; then
        say "redis-server is not installed; as root run: apt-get install -y redis-server"
        exit 1
    fi
    say "installing redis-server from Debian (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends redis-server >&2
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# PING over bash's /dev/tcp: no redis-cli needed.
ping() {
    local reply=""
    {
        exec 3<>"/dev/tcp/127.0.0.1/$1" &&
            printf 'PING\r\n' >&3 &&
            IFS= read -r -t 2 reply <&3
        exec 3>&- 3<&-
    } 2>/dev/null || return 1
    [[ "$reply" == +PONG* ]]
}

running() {
    [[ -f "$state/url" && -f "$state/port" && -f "$state/redis.pid" ]] || return 1
    kill -0 "$(cat "$state/redis.pid")" 2>/dev/null || return 1
    ping "$(cat "$state/port")"
}

start() {
    if running; then
        say "already running ($state)"
        echo "PUSHWIRE_TEST_REDIS_URL=$(cat "$state/url")"
        return 0
    fi
    command -v redis-server >/dev/null || install_redis
    # A stale state dir (server killed, machine rebooted) is rebuilt from scratch.
    rm -rf "$state"
    mkdir -p "$state"
    local port attempt
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        cat >"$state/redis.conf" <<CONF
bind 127.0.0.1
port $port
dir $state
daemonize yes
pidfile $state/redis.pid
logfile $state/server.log
save ""
appendonly no
protected-mode yes
CONF
        if redis-server "$state/redis.conf" >/dev/null 2>&1; then
            local waited
            for waited in $(seq 1 50); do
                if ping "$port"; then
                    break 2
                fi
                sleep 0.1
            done
        fi
        say "could not start on port $port (attempt $attempt)"
        [[ $attempt -lt 5 ]] || {
            tail -n 20 "$state/server.log" >&2 2>/dev/null || true
            exit 1
        }
    done
    local url="redis://127.0.0.1:$port/0"
    echo "$port" >"$state/port"
    echo "$url" >"$state/url"
    say "running on 127.0.0.1:$port (state $state)"
    echo "PUSHWIRE_TEST_REDIS_URL=$url"
}

stop() {
    if [[ -f "$state/redis.pid" ]]; then
        local pid
        pid=$(cat "$state/redis.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            local waited
            for waited in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
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
        echo "PUSHWIRE_TEST_REDIS_URL=$(cat "$state/url")"
    else
        exit 1
    fi
    ;;
*)
    echo "usage: $0 start|stop|status [STATE_DIR]" >&2
    exit 2
    ;;
esac
