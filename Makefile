# The two commands a newcomer needs: `make test` and `make demo`.
# Both create the virtualenv on first use, so they work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest demo bench clean system-deps

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

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

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -m demo.run $(ARGS)

# Benchmarks print figures; they are not tests. Run as modules so bench/protocol.py
# does not shadow the protocol package.
bench: $(STAMP)
	$(BIN)/python -m bench.protocol
	$(BIN)/python -m bench.relay
	$(BIN)/python -m bench.referral
	$(BIN)/python -m bench.stats

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
