# Two entry points: `make run` (the demo stack) and `make test` (the whole suite).
# Both bootstrap everything from a fresh clone: venv, pinned packages, data, services.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export LXP_HOME ?= $(CURDIR)/var
export DAGSTER_HOME ?= $(LXP_HOME)/dagster
SCALE ?= demo
PORT ?= 8000
DAGSTER_PORT ?= 3000
CODE_SERVER_PORT ?= 4000
API_REPLICAS ?= 2
APT_PACKAGES := postgresql redis-server libreoffice-calc-nogui

.PHONY: run up-production test venv system-deps warehouse bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Services the tests start themselves (PostgreSQL, redis-server), LibreOffice
# for the "opens without repair" check, and kubectl (Debian's kubernetes-client)
# for `kubectl kustomize deploy/k8s` in tests/deploy. Installed only when missing.
system-deps:
	@missing=""; \
	[ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v soffice >/dev/null || missing="$$missing libreoffice-calc-nogui"; \
	command -v kubectl >/dev/null || missing="$$missing kubernetes-client"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(LXP_HOME)/warehouse.duckdb: | venv
	$(VENV)/bin/lxp-reports generate --scale $(SCALE)

warehouse: $(LXP_HOME)/warehouse.duckdb

run: venv warehouse
	@echo "Demo token (institution 1, admin user 2):"
	@echo "  TOKEN=$$($(VENV)/bin/lxp-reports token --institution 1 --user 2 --subdomain demo)"
	@echo "  curl -s -H \"Authorization: Bearer \$$TOKEN\" 'http://127.0.0.1:$(PORT)/institution/reports/storyboard-usage?month=$$(date -d 'last month' +%-m)&year=$$(date -d 'last month' +%Y)'"
	$(VENV)/bin/lxp-reports up --port $(PORT) --dagster-port $(DAGSTER_PORT)

# The production topology on this machine: gRPC code server + webserver + daemon + API replicas.
# PostgreSQL, Redis and S3 are NOT started: export DAGSTER_PG_URL, LXP_LEDGER_URL, LXP_WAREHOUSE_URL,
# LXP_RATE_LIMIT_STORAGE, LXP_STORAGE, LXP_COMPUTE_LOGS (see docs/topology.md).
up-production: venv
	$(VENV)/bin/lxp-reports up --profile production --api-replicas $(API_REPLICAS) --port $(PORT) \
	  --dagster-port $(DAGSTER_PORT) --code-server-port $(CODE_SERVER_PORT)

# Habits enforced in CI: formatting, lint, types (strict for assets/ and api/) and the import layers.
lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: venv system-deps lint
	@set +e; $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

bench: venv
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[bench]'
	$(PY) benchmarks/xlsx_writer.py

clean:
	rm -rf $(VENV) var .pytest_cache
