# chatmem: `make demo` plays the whole story, `make test` runs every test.
# Each target installs what is missing, and only that.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
PYTHON      ?= python3
BIN         := $(VENV)/bin
CHATMEM     := $(BIN)/chatmem
PG_MAJOR    ?= 15
TEST_DB     ?= chatmem_test

# The embedded cluster lives under the checkout when run from here.
export CHATMEM_DATA_DIR ?= $(CURDIR)/.chatmem/pgdata

SYSTEM_PACKAGES := postgresql-$(PG_MAJOR) postgresql-contrib postgresql-$(PG_MAJOR)-pgtap postgresql-$(PG_MAJOR)-plpgsql-check \
                   libtap-parser-sourcehandler-pgtap-perl pgbouncer chromium
# pg_cron, loaded by the embedded cluster for `chatmem retention schedule` (docs/operations/retention.md).
SYSTEM_PACKAGES += postgresql-$(PG_MAJOR)-cron

.PHONY: help install-system install-bench-system venv db-up db-down test test-pgtap test-pytest demo bench lint clean

help:
	@echo "make demo   - set up, start the embedded PostgreSQL and play the guest-to-account story"
	@echo "make test   - set up, then run the pgTAP and pytest suites"
	@echo "make bench  - measure chatmem against the older design and a bare insert (about 20 min;"
	@echo "              BENCH_ARGS='--quick' for a smoke run, BENCH_ARGS='--help' for sizes and durations)"
	@echo "make lint   - ruff, mypy (strict) and squawk (every forward migration)"
	@echo "make db-down / clean"

# System packages: only those missing, and only as root.
install-system:
	@missing=""; \
	for pkg in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "error: missing Debian packages:$$missing - run 'sudo make install-system' (installing needs root)" >&2; exit 1; \
	  fi; \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install when the project's metadata changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

db-up: install-system venv
	$(CHATMEM) db up

db-down: venv
	$(CHATMEM) db down

test: install-system venv
	@set -euo pipefail; \
	url=$$($(CHATMEM) db url --database $(TEST_DB) --recreate); \
	$(CHATMEM) migrate --database-url "$$url" >/dev/null; \
	psql -X -q -v ON_ERROR_STOP=1 -d "$$url" -f pgtap_tests/setup/install.sql; \
	echo "== pgTAP =="; \
	( eval "$$($(CHATMEM) db url --database $(TEST_DB) --env)" && pg_prove pgtap_tests/*.sql ); \
	echo "== pytest =="; \
	CHATMEM_TEST_DATABASE_URL="$$url" $(BIN)/pytest -q

demo: install-system venv
	$(BIN)/python -m chatmem.demo

# The benchmark (issue 6): prints figures and PASS/MISS per target, writes
# bench/results/<date>.json, a PNG plot beside it and bench/results/latest.md.
# It needs matplotlib for the plot: the 'bench' extra, installed here only.
BENCH_DB   ?= chatmem_bench
BENCH_ARGS ?=

$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,bench]'
	@touch $@

# The http section (issue 11) also needs wrk and the older Node.js backend's
# packages (bench/baselines/node-backend): installed here only, never by test or demo.
NODE_BASELINE := bench/baselines/node-backend

install-bench-system:
	@missing=""; \
	dpkg-query -W -f='$${Status}' wrk 2>/dev/null | grep -q "install ok installed" || missing="$$missing wrk"; \
	command -v node >/dev/null && command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "error: missing Debian packages:$$missing - install them as root (apt-get install$$missing)" >&2; exit 1; \
	  fi; \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(NODE_BASELINE)/node_modules/.installed: $(NODE_BASELINE)/package-lock.json | install-bench-system
	cd $(NODE_BASELINE) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

bench: install-system install-bench-system venv $(VENV)/.bench-installed $(NODE_BASELINE)/node_modules/.installed
	$(BIN)/python -m bench --database $(BENCH_DB) $(BENCH_ARGS)

lint: venv
	$(BIN)/ruff check thin_client tests
	$(BIN)/mypy
	$(BIN)/squawk $(filter-out %.rollback.sql,$(wildcard db/migrations/*.sql))

clean: db-down
	rm -rf .chatmem $(VENV)
