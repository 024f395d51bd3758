# The two commands a newcomer needs: `make test` and `make demo`.
# Both create the virtualenv on first use, so they work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest demo bench clean system-deps lock spec

# The exact versions, hash-checked, from the lock file; then the project itself without
# dependencies (pip allows no editable line among hash-checked requirements: two steps).
$(STAMP): pyproject.toml requirements-test.lock
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-test.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# Regenerate requirements-test.lock (runtime + test extra, for make test/demo) and
# requirements.lock (runtime, for deploy/) from pyproject.toml, for CPython 3.11 on Linux.
# Pins that still fit pyproject.toml are kept; to move them:
#   make lock LOCK_ARGS=--upgrade                   (everything)
#   make lock LOCK_ARGS='--upgrade-package aiohttp'  (one package)
# pip-tools runs in a throwaway venv, so it is not in .venv or the lock. The runtime lock
# starts from the test lock's pins, so both files hold the same version of every package.
PIP_TOOLS := pip-tools==7.6.2
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-trusted-host --no-emit-find-links
lock:
	@set -e; tools=$$(mktemp -d); trap 'rm -rf "$$tools"' EXIT; \
	$(PYTHON) -m venv "$$tools"; \
	"$$tools/bin/python" -c 'import platform as p, sys; sys.exit(None if ( \
		p.python_implementation(), sys.version_info[:2], p.system(), p.machine()) == ( \
		"CPython", (3, 11), "Linux", "x86_64") else \
		"make lock: needs CPython 3.11 on Linux x86_64; name one with PYTHON=...")'; \
	"$$tools/bin/pip" install --quiet --upgrade pip; \
	"$$tools/bin/pip" install --quiet '$(PIP_TOOLS)'; \
	export CUSTOM_COMPILE_COMMAND='make lock'; \
	echo "pip-compile: requirements-test.lock"; \
	"$$tools/bin/pip-compile" $(LOCK_FLAGS) $(LOCK_ARGS) --extra test \
		--output-file requirements-test.lock pyproject.toml; \
	cp requirements-test.lock requirements.lock; \
	echo "pip-compile: requirements.lock"; \
	"$$tools/bin/pip-compile" $(LOCK_FLAGS) --output-file requirements.lock pyproject.toml

# What the tests need outside Python: Debian's chromium (the browser tests drive it);
# Debian's postgresql (tests/pg.py starts a throwaway cluster per test worker for the
# hub's PostgreSQL backend; Debian puts initdb not on PATH but in
# /usr/lib/postgresql/<N>/bin/, so that is what is looked for); and axe-core, which the
# browser tests run in chromium for accessibility (installed with Debian's npm into
# .cache/axe, not into the repository). Installed here, not only in .ci/run, so
# `make test` alone works on a fresh machine. axe-core is pinned by version
# and by the hash of the one file the tests load: without a lock file npm checks a
# download only against what the registry says today (the Python lock's --require-hashes
# in one line). A stale or changed copy is replaced.
AXE_VERSION := 4.14.1
AXE_SHA256 := 29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c
AXE_DIR := .cache/axe
AXE_JS := $(AXE_DIR)/node_modules/axe-core/axe.min.js
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" != 0 ]; then \
		echo "make test needs the Debian packages$$missing: run 'sudo apt-get install$$missing' (or make test as root)"; \
		exit 1; \
	fi; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@echo "$(AXE_SHA256)  $(AXE_JS)" | sha256sum --check --status 2>/dev/null || { \
		echo "installing axe-core $(AXE_VERSION) into $(AXE_DIR)"; \
		rm -rf $(AXE_DIR) && \
		npm install --silent --no-save --no-audit --no-fund --prefix $(AXE_DIR) \
			axe-core@$(AXE_VERSION) && \
		echo "$(AXE_SHA256)  $(AXE_JS)" | sha256sum --check --quiet; }

test: system-deps $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache .importlinter

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -m demo.run $(ARGS)

# node/api/openapi.yaml is the API's spec; the node reads the JSON made from it
# (no YAML parser in a running node). tests/node/test_contract.py fails when stale.
spec: $(STAMP)
	$(BIN)/python -c 'import json, pathlib, yaml; \
		d = yaml.safe_load(pathlib.Path("node/api/openapi.yaml").read_bytes()); \
		pathlib.Path("node/api/openapi.json").write_text( \
			json.dumps(d, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")'

# Benchmarks print figures; they are not tests. Run as modules so bench/protocol.py
# does not shadow the protocol package.
bench: $(STAMP)
	$(BIN)/python -m bench.protocol
	$(BIN)/python -m bench.enrollment
	$(BIN)/python -m bench.relay
	$(BIN)/python -m bench.referral
	$(BIN)/python -m bench.stats
	$(BIN)/python -m bench.node_idle

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .cache
