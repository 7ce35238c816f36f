# errwire — the two commands a newcomer needs are `make demo` and `make test`.
# Everything they need (a venv, the packages, Debian packages for the tests) is installed here.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
MODULES := $(VENV)/.modules

.PHONY: help test lint typecheck pytest demo bench bench-quick clean FORCE

help:
	@echo "make demo   - set everything up and run the demo project (local SQLite sink)"
	@echo "make test   - set everything up and run lint, type checks and the test suite"
	@echo "make bench  - every benchmark beside sentry-sdk and OpenTelemetry; writes benchmarks/RESULTS.md (<15 min)"
	@echo "make bench-quick - the same, rough, in under a minute"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The editable install is a strict link tree so mypy can read it; it must be
# rebuilt when a module is added or removed, so track the list of files (and the
# C sources' contents: the extension is compiled at install time).
$(MODULES): FORCE | $(PY)
	@find core integrations -type f \( -name '*.py' -o -name '*.pyi' -o -name 'py.typed' -o -name '*.html' -o -name '*.css' -o -name '*.js' \) | sort > $@.new
	@sha1sum core/*.c >> $@.new
	@cmp -s $@.new $@ || mv $@.new $@
	@rm -f $@.new

$(STAMP): pyproject.toml $(MODULES) | $(PY) compiler
	flock $(VENV)/.lock $(PY) -m pip install --quiet -e '.[dev]' --config-settings editable_mode=strict
	@touch $@

setup: $(STAMP)

# Debian packages the tests drive for real: Redis (the fleet bus), Chromium (the
# dashboard's browser tests) and wrk (load from a second process in the benchmarks).
# A no-op once they are installed; `apt-get update` runs once, before the first install.
SYSTEM_PACKAGES := redis-server chromium chromium-driver wrk
APT_INSTALL = SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(APT_INSTALL) $$missing >/dev/null; \
	fi

# A C compiler for the capture path's optional extension (core/_speedups.c); without
# one the install falls back to the pure-Python twin, slower but the same.
compiler:
	@command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || \
	  { echo "installing Debian package: gcc"; $(APT_INSTALL) gcc >/dev/null || echo "no C compiler: errwire runs its pure-Python traceback walk"; }

.PHONY: setup system-deps compiler

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) bugsink system-deps
	@$(BIN)/pytest --cov --cov-branch --cov-report=term -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

test: lint typecheck pytest

bench: $(STAMP) system-deps
	$(PY) -m benchmarks

bench-quick: $(STAMP) system-deps
	$(PY) -m benchmarks --quick

# The demo project (demo_project/): migrate, serve on 127.0.0.1:8000 (DEMO_PORT to change),
# drive a burst of traffic, print telemetry_status, keep serving until Ctrl-C.
demo: $(STAMP)
	cd demo_project && ../$(PY) run_demo.py

clean:
	rm -rf $(VENV) build *.egg-info .coverage .mypy_cache .ruff_cache .pytest_cache .errwire

# Bugsink, the Sentry-compatible server the e2e tests deliver to: its own venv in
# build/bugsink-venv and a cached migrated database (tests/support/bugsink.py;
# file-locked, a no-op once done). `make bugsink-check` also starts it once.
bugsink: $(STAMP)
	$(PY) -m tests.support.bugsink

bugsink-check: $(STAMP)
	$(PY) -m tests.support.bugsink --check

.PHONY: bugsink bugsink-check
