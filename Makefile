# One entry point for humans and CI. `make test` works on a fresh machine with only Python 3.11
# (and a C compiler): it creates .venv, installs the pinned dependencies (requirements-dev.lock: the
# image's requirements.lock, the mypyc build tools, the test and dev extras) and the project, lints,
# type-checks, runs the whole suite on the sources as Python (what a plain `pytest` runs), compiles
# the request path with mypyc as the Docker image does (setup.py) into build/compiled/, and runs the
# whole suite again against that build (Postgres/Redis come from DATABASE_URL/REDIS_URL or throwaway
# servers from PyPI wheels).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: test install lock lint typecheck compile pytest pytest-compiled bench mutation clean

test: install lint typecheck pytest compile pytest-compiled

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or run: make PYTHON=python3 test)"; exit 2; }
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# Dependencies only from the locks, then the project without resolving anything, as the Dockerfile
	@# does: the runtime versions are the image's, and == pins move a .venv from before to them too.
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	@# The Compose Specification JSON schema ships inside this wheel; the compose contract
	@# tests read it from there (downloaded, never installed: its dependencies are ancient).
	@test -n "$$(ls $(VENV)/vendor/docker_compose-1.29.2-*.whl 2>/dev/null)" || \
		$(BIN)/python -m pip download --quiet --no-deps docker-compose==1.29.2 -d $(VENV)/vendor
	@# promtool, for the Prometheus configuration and dashboard checks: Debian's, unpacked into $(BIN) (or skipped).
	@sh tools/install_promtool.sh $(BIN)
	@# The real-client tests run npm clients (Apollo Client, urql, graphql-ws, subscriptions-transport-ws)
	@# under Node from tests/clients/: installed from its lock with npm ci, and only when the lock is newer
	@# than the last install. Without npm they skip.
	@if command -v npm >/dev/null 2>&1; then \
		test tests/clients/node_modules/.package-lock.json -nt tests/clients/package-lock.json || \
		npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the Node client tests (tests/edge/test_real_http_clients.py, tests/edge/ws/test_real_clients.py) will be skipped"; fi
	@# The GraphiQL browser test (tests/edge/test_graphiql_browser.py) drives Debian's Chromium with playwright-core
	@# (from tests/clients/). Installed here when missing, as root with apt-get; otherwise that test skips.
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
			echo "chromium could not be installed: the GraphiQL browser test will be skipped"; \
		else echo "chromium not found (installed only as root with apt-get): the GraphiQL browser test will be skipped"; fi; \
	fi

# Regenerate requirements.lock and requirements-dev.lock from pyproject.toml (tools/lock.py). By default
# PyPI as of the time in requirements.lock, which reproduces the committed files; AS_OF=now (or an ISO
# 8601 time) moves every pin to the newest release pyproject.toml's ranges allow.
lock:
	$(PYTHON) tools/lock.py $(if $(AS_OF),--as-of $(AS_OF))

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check edge actions

typecheck:
	$(BIN)/mypy edge actions

# A fresh build/compiled/: a copy of the edge package with the .so files (mypyc's shared library
# too), and tools/compiled_sitecustomize.py as its sitecustomize, so that with PYTHONPATH=build/compiled
# every Python process imports edge from it. The sources are never shadowed: a checkout runs them as
# Python, and .so files an older make compile left next to them are removed here. tests/conftest.py
# refuses a compiled run whose build differs from the sources (edge/build_info.py).
compile:
	find edge -name '*.cpython-311-*.so' -delete
	rm -rf build/compiled
	EDGE_MYPYC=1 $(BIN)/python setup.py -q build_py --build-lib build/compiled build_ext --build-lib build/compiled
	rm -rf build/compiled/actions
	cp tools/compiled_sitecustomize.py build/compiled/sitecustomize.py

# The whole suite both ways (tests/support/build.py): on the sources, then on build/compiled/. Both
# runs are the whole suite, so every module of setup.py's list runs in each. Measured from a fresh
# clone on the shared 2-core box (two runs, other jobs on it): install, lint and typecheck 1-1.5 min,
# the interpreted run 6.5-8.5 min, compile 1.5-3.5 min, the compiled run 6.5-9 min: 18-20.5 min in all,
# within CI's 30. Should it pass 24 min, the interpreted run is the one to trim.
pytest:
	$(BIN)/pytest -q

pytest-compiled:
	BUILD_UNDER_TEST=compiled $(BIN)/pytest -q

bench: install compile
	@# The bench extra on top of the locks: whatever it adds is unpinned, nothing locked moves.
	$(BIN)/python -m pip install --quiet --no-build-isolation -r requirements-dev.lock -e '.[bench]'
	$(BIN)/python bench/http_path.py

# Mutation testing of the modules whose tests are held to it (which, with which tests: TARGETS in
# tools/mutation.py), each alone in a copy under build/mutation/; prints the surviving mutants per module
# and fails when one is not under 10 %. Not part of `make test` (a few minutes). docs/architecture.md#mutation-testing
mutation: install
	$(BIN)/python tools/mutation.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build
	find . -name '*.cpython-311-*.so' -not -path './$(VENV)/*' -delete
