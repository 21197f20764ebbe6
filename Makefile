# softplc developer commands. `make help` lists them.
.DEFAULT_GOAL := help
# Everything installs into a virtual environment in the checkout: nothing outside it changes.
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := mbpoll socat rt-tests
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help
help: ## List the targets
	@# Colour only on a terminal (and not with NO_COLOR set): a pipe gets plain text.
	@if [ -t 1 ] && [ -z "$${NO_COLOR:-}" ]; then on='\033[36m'; off='\033[0m'; else on=; off=; fi; \
	grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*## "}; {printf "  %s%-14s%s %s\n", on, $$1, off, $$2}'

.PHONY: setup
setup: ## Install Debian packages (as root), then softplc with its test tools
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
		if [ -n "$$missing" ]; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		fi; \
	else echo "not root: skipping Debian packages ($(APT_PACKAGES)); install them yourself"; fi
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'

.PHONY: build
build: ## Rebuild the native extension after Rust changes (optimized, no LTO)
	$(PY) -m pip install -q --no-deps -e .

.PHONY: demo
demo: setup ## Set up, then run the demos: blink (real time) and the tank (virtual time)
	$(VENV)/bin/softplc run programs/blink.py --cycle 1ms --duration 5s
	$(VENV)/bin/softplc run programs/tank.py --virtual --cycle 10ms --cycles 30000

.PHONY: test
test: setup test-rust test-python ## Set up, then run every test (Rust and Python)

.PHONY: test-rust
test-rust: ## Rust tests (no Python needed)
	cargo test --workspace --exclude softplc-py --quiet

.PHONY: test-python
test-python: ## Python tests (default markers: no slow, benchmark or rt tests)
	$(PY) -m pytest -q

.PHONY: lint
lint: setup ## Formatting and lints (cargo fmt/clippy, ruff, mypy); CI runs it before the tests
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff format --check python tests programs benches
	$(VENV)/bin/ruff check python tests programs benches
	$(VENV)/bin/mypy

.PHONY: bench
bench: ## Benchmarks: release build with LTO, then every benchmark
	$(PY) -m pip install -q --no-deps -e . --config-settings=build-args='--profile=release'
	$(PY) -m pytest -m benchmark -q -s -p no:randomly
	$(PY) benches/jitter.py --seconds 60

.PHONY: bench-trace
bench-trace: ## Trace benchmark (1,000 REAL signals at 1 kHz for 60 s)
	$(PY) benches/trace_bench.py --seconds 60

.PHONY: bench-jitter
bench-jitter: ## Jitter benchmark only (cyclictest vs engine vs Python, 60 s each)
	$(PY) -m pip install -q --no-deps -e . --config-settings=build-args='--profile=release'
	$(PY) benches/jitter.py --seconds 60
