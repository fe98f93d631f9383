#!/usr/bin/env bash
# The whole suite, on a fresh machine: install test dependencies (pinned by constraints.txt, so
# a run is reproducible), build the extension, lint, then the Rust tests and the Python tests;
# then the Python tests again in a fresh virtualenv with the newest releases inside
# pyproject's ranges (PUSHWIRE_NO_LATEST=1 skips that). .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

step "install pushwire (builds the Rust extension, release) with its test dependencies, as pinned in constraints.txt"
python3 -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'

step "lint: rustfmt, clippy, ruff, mypy, stubtest"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
python3 -m ruff check python tests benches examples
python3 -m ruff format --check python tests benches examples
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

# Today's releases, not the pinned ones: what `pip install pushwire` gives a new user. A fresh
# virtualenv, no constraints, no pip cache; the wheel builds from the same Rust target dir, so
# nothing is compiled twice. The servers started above serve this run too. When today's
# releases are exactly the pins, the run above already tested them: the fresh install then
# runs the README and examples tests (the wheel, the console script, the integrations);
# otherwise the whole Python suite runs again with the newer releases.
if [[ "${PUSHWIRE_NO_LATEST:-}" != 1 ]]; then
    step "newest releases inside pyproject's ranges: a fresh virtualenv without constraints.txt"
    latest="$(mktemp -d /tmp/pushwire-latest.XXXXXX)"
    cleanup+=('rm -rf "$latest"')
    python3 -m venv "$latest"
    PIP_NO_CACHE_DIR=1 "$latest/bin/python" -m pip install --quiet --disable-pip-version-check '.[test]'
    latest_tests=(tests/test_readme.py tests/test_examples.py)
    if ! "$latest/bin/python" scripts/compare-constraints.py constraints.txt; then
        latest_tests=()  # the whole suite
    fi

    step "Python tests with the newest releases (${latest_tests[*]:-the whole suite})"
    PATH="$latest/bin:$PATH" "$latest/bin/python" -m pytest -q -p no:cacheprovider "${latest_tests[@]}"
fi
