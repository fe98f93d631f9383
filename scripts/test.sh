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

step "Python tests"
python3 -m pytest -q
