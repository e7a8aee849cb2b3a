# The README's commands. Only python3 (>= 3.10) and pip are needed; everything
# else, the embedded PostgreSQL + pgvector included, installs into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-unit test-citus lint bench bench-full clean browser schema sync

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/semsearch demo

# The Flask example is tested in a real headless Chromium: Debian's, since browser
# downloads by test tools cannot work offline. Installed here when running as root.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else \
	    echo "the browser test needs chromium and chromium-driver: sudo apt-get install chromium chromium-driver" >&2; \
	    exit 1; \
	  fi; \
	fi

# Two processes by default (2 cores): every test has its own database, named per process;
# a file's tests stay on one process so module fixtures are built once. TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 2
test: $(STAMP) browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# Citus (distributed Postgres) on a real cluster: Citus is built from CITUS_SRC into the
# embedded server (cached under CITUS_CACHE; not vendored here), a coordinator and two workers run
# on 127.0.0.1 for tests/citus/ only, and are stopped whatever the tests' outcome. A build is
# configured for one pg_config (its install goes there), so the cache is one build per server.
# CITUS_SRC: a directory with build.sh and the Citus source tarball (default ../shared/citus,
# beside this checkout); from a clone elsewhere: make test-citus CITUS_SRC=/path/to/citus
CITUS_SRC ?= ../shared/citus
CITUS_CACHE ?= $(HOME)/.cache/semsearch

.PHONY: citus-src
citus-src:
	@test -f "$(CITUS_SRC)/build.sh" || { echo "make test-citus builds Citus from its source: expected \
	$(CITUS_SRC)/build.sh, got none; set CITUS_SRC to the directory holding build.sh and the Citus tarball \
	(default ../shared/citus)" >&2; exit 2; }

# citus-src first: a missing source is reported before anything is installed
test-citus: citus-src $(STAMP)
	@pgc=$$($(BIN)/python tests/citus/cluster.py pg-config) && \
	bash $(CITUS_SRC)/build.sh "$$pgc" "$(CITUS_CACHE)/citus-build-$$(printf %s "$$pgc" | sha1sum | cut -c1-12)"
	@dir=$$(mktemp -d) && chmod 755 $$dir && \
	if url=$$($(BIN)/python tests/citus/cluster.py start $$dir/cluster); then \
	  SEMSEARCH_CITUS_URL=$$url $(BIN)/python -m pytest tests/citus; rc=$$?; \
	else rc=1; fi; \
	$(BIN)/python tests/citus/cluster.py stop $$dir/cluster; rm -rf $$dir; exit $$rc

# the fast lane: no Postgres at all (the URL points nowhere on purpose), docstring examples included
test-unit: $(STAMP)
	SEMSEARCH_TEST_DATABASE_URL=postgresql://nobody@127.0.0.1:1/none $(BIN)/python -m pytest tests/unit

# sql/schema.sql: the whole current schema, dumped from a throwaway database of the embedded server
schema: $(STAMP)
	$(BIN)/python tools/schema.py

# the sync modules (semsearch/collection.py, lookups.py, measuring.py, deferred.py, upkeep.py, writes.py,
# retrying.py, repairs.py, staging.py) are generated
# from their async source in semsearch/aio/; tests/unit/test_one_source.py fails when one is stale
sync: $(STAMP)
	$(BIN)/python tools/make_sync.py

lint: $(STAMP)
	$(BIN)/ruff check semsearch migrations tests bench tools
	$(BIN)/ruff format --check semsearch migrations tests bench tools
	$(BIN)/python tools/make_sync.py --check
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run.py --quick

bench-full: $(STAMP)
	$(BIN)/python bench/run.py --full

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
