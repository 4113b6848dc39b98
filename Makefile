# MemoryHub developer commands. Everything installs into .venv; nothing global is touched.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
TLS_PORT ?= 8443
NODE_STAMP := node_modules/.installed
# make bench BENCH=api or BENCH=admin for the other benchmarks
BENCH ?= graph
# The browser tests (tests/browser) drive Debian's chromium; Playwright's own browsers are not used.
CHROMIUM := /usr/bin/chromium

.PHONY: install run run-tls test lint fmt migrations-check bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap --base-url http://$(HOST):$(PORT)
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) memoryhub.asgi:application

# HTTPS with the certificate in MEMORYHUB_TLS_CERT / MEMORYHUB_TLS_KEY (else a self-signed one).
run-tls: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap --base-url https://$(HOST):$(TLS_PORT)
	$(VENV)/bin/daphne -e "$$($(PY) manage.py tls_endpoint --host $(HOST) --port $(TLS_PORT))" memoryhub.asgi:application

# The official memory server and the MCP Inspector, for the MCP compatibility tests (npm ci wipes
# node_modules first, so the stamp is written after it).
$(NODE_STAMP): package.json package-lock.json
	command -v npm >/dev/null || { \
	  if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; else SUDO=; fi; \
	  $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Installed through apt only when missing (with sudo when not root and sudo exists).
$(CHROMIUM):
	test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; else SUDO=; fi; \
	  $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

test: $(STAMP) $(CHROMIUM) $(NODE_STAMP)
	$(PY) manage.py makemigrations --check --dry-run >/dev/null || (echo "models changed without a migration: run manage.py makemigrations" && exit 1)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrations-check: $(STAMP)
	$(PY) manage.py makemigrations --check --dry-run

bench: $(STAMP)
	$(PY) -m bench.$(BENCH) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
