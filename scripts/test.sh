#!/usr/bin/env bash
# The whole suite, on a fresh machine: install test dependencies, build the extension, lint,
# then the Rust tests and the Python tests. .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "install pushwire (builds the Rust extension, release) with its test dependencies"
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'

step "lint: rustfmt, clippy, ruff, mypy, stubtest"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
python3 -m ruff check python tests benches
python3 -m ruff format --check python tests benches
python3 -m mypy
python3 -m mypy.stubtest pushwire._core --allowlist .mypy-stubtest-allowlist

step "Rust tests (engine, mock server)"
cargo test --workspace --quiet

# Throwaway servers started below are stopped quietly on exit, so pytest's summary stays the
# last line. One EXIT trap for all of them: each step adds its own cleanup.
cleanup=()
stop_servers() {
    local command
    for command in "${cleanup[@]}"; do
        eval "$command" >/dev/null 2>&1 || true
    done
}
trap stop_servers EXIT

step "PostgreSQL for the endpoint-store tests: a throwaway server on 127.0.0.1 (PUSHWIRE_NO_POSTGRES=1 skips them)"
if [[ "${PUSHWIRE_NO_POSTGRES:-}" != 1 && -z "${PUSHWIRE_TEST_POSTGRES_DSN:-}" ]]; then
    pg_state="$(mktemp -d /tmp/pushwire-postgres.XXXXXX)"
    cleanup+=('scripts/postgres.sh stop "$pg_state"')
    export "$(scripts/postgres.sh start "$pg_state")"
fi

step "Redis for the job-queue tests: a throwaway server on 127.0.0.1, installed from Debian if missing (PUSHWIRE_NO_REDIS=1 skips them)"
if [[ "${PUSHWIRE_NO_REDIS:-}" != 1 && -z "${PUSHWIRE_TEST_REDIS_URL:-}" ]]; then
    redis_state="$(mktemp -d /tmp/pushwire-redis.XXXXXX)"
    cleanup+=('scripts/redis.sh stop "$redis_state"')
    export "$(scripts/redis.sh start "$redis_state")"
fi

step "nginx for the benchmark harness's config check (tests/test_cli_bench.py), installed from Debian if missing"
if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "nginx is not installed; as root run: apt-get install -y nginx-light" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends nginx-light >&2
fi

step "Chromium and chromedriver for the console browser test (tests/test_server_console.py), installed from Debian if missing"
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "chromium is not installed; as root run: apt-get install -y chromium chromium-driver" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
fi

step "Python tests"
python3 -m pytest -q
