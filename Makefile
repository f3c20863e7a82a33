# Every target sets up what it needs in .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint unit bench clean conformance autobahn-env

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/webwire demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# nginx is one of the real servers of the integration tests.
NGINX_INSTALL := command -v nginx >/dev/null || test -x /usr/sbin/nginx || \
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light)
# The HTTP/3 benchmark's server (caddy serves h3).
CADDY_INSTALL := command -v caddy >/dev/null || \
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq caddy)

# Autobahn|Testsuite's fuzzing server runs on Python 2.7: .venv-autobahn is built
# from pyenv's 2.7.18 (or $$AUTOBAHN_PYTHON2) with pinned packages; the script
# returns at once when it is up to date (tests/conformance/autobahn_env.py).
autobahn-env: $(STAMP)
	$(BIN)/python tests/conformance/autobahn_env.py

unit: $(STAMP) autobahn-env
	$(NGINX_INSTALL)
	$(BIN)/pytest -q

# The full Autobahn|Testsuite run (cases 1-7, 9, 12, 13) with webwire's asyncio client;
# reports in tests/conformance/reports/clients/. Other clients or cases:
# make conformance CONFORMANCE_ARGS='--client webwire-trio --cases 1.*,2.*'
CONFORMANCE_ARGS ?=
conformance: $(STAMP) autobahn-env
	$(BIN)/python tests/conformance/run_autobahn.py $(CONFORMANCE_ARGS)

test: lint unit

# niquests needs urllib3-future, whose wheel replaces urllib3 in the whole venv
# (requests and the urllib3 baseline of http1.py would then measure the fork):
# build it from source with URLLIB3_NO_OVERRIDE so that it installs as
# urllib3_future only, and refuse a venv where urllib3 is already replaced.
$(VENV)/.installed-bench: $(STAMP)
	URLLIB3_NO_OVERRIDE=1 $(BIN)/python -m pip install --quiet --no-cache-dir --no-binary urllib3-future -e '.[bench]'
	$(BIN)/python -c 'import sys, urllib3; sys.exit("urllib3 in $(VENV) is urllib3-future; recreate the venv: make clean bench" if hasattr(urllib3, "AsyncPoolManager") else 0)'
	$(NGINX_INSTALL) || true
	$(CADDY_INSTALL) || true
	touch $@

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/http1.py
	$(BIN)/python benchmarks/http2.py
	$(BIN)/python benchmarks/websocket.py
	$(BIN)/python benchmarks/http3.py
	$(BIN)/python benchmarks/webtransport.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# The response fuzzer at length: 50,000 hostile responses (the normal test
# run tries 2,000).
.PHONY: fuzz
fuzz: $(STAMP)
	WEBWIRE_FUZZ_EXAMPLES=50000 $(BIN)/pytest -q tests/faults/test_response_fuzz.py
