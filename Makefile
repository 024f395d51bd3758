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

# Debian packages the tests need (the browser tests drive Debian's chromium).
# Installed here, not only in .ci/run, so `make test` alone works on a fresh machine.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian packages: chromium"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

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
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
