# Everyday commands; each runs what scripts/test.sh (CI) runs. `make help` lists them.
PYTHON ?= python3
CARGO_TARGET_DIR ?= target
export CARGO_TARGET_DIR

.PHONY: help install build-dev format lint test test-rust bench

help:
	@echo "install    pip install -e '.[test]' (builds the Rust extension, release)"
	@echo "build-dev  rebuild the extension in place after a Rust change (release, no pip)"
	@echo "format     cargo fmt + ruff format + ruff's import sorting"
	@echo "lint       rustfmt/ruff format checks, clippy -D warnings, ruff, mypy, stubtest"
	@echo "test       the Python tests (needs PostgreSQL and Redis: see scripts/test.sh)"
	@echo "test-rust  cargo test for every crate"
	@echo "bench      the FFI micro-benchmarks (pytest-benchmark; pip install '.[bench]')"

install:
	$(PYTHON) -m pip install -e '.[test]'

build-dev:
	cargo build --release -p pushwire-py --features pyo3/extension-module
	cp $(CARGO_TARGET_DIR)/release/lib_core.so python/pushwire/_core.abi3.so

format:
	cargo fmt --all
	$(PYTHON) -m ruff check --select I --fix python tests benches
	$(PYTHON) -m ruff format python tests benches

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	$(PYTHON) -m ruff check python tests benches
	$(PYTHON) -m ruff format --check python tests benches
	$(PYTHON) -m mypy
	$(PYTHON) -m mypy.stubtest pushwire._core --allowlist .mypy-stubtest-allowlist

test:
	$(PYTHON) -m pytest -q

test-rust:
	cargo test --workspace --quiet

bench:
	$(PYTHON) -m pytest benches/bench_ffi.py --benchmark-only -q
