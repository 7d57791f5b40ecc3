# pg_eventstore — every task starts here. `make test` and `make demo` do all
# their own set-up on a fresh Debian 12 machine (apt packages when root, the
# venv, a throwaway cluster).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VERSION := $(shell cat VERSION)
PG_BINDIR ?= /usr/lib/postgresql/15/bin
PG_CONFIG ?= $(PG_BINDIR)/pg_config
export PATH := $(PG_BINDIR):$(PATH)

VENV := .venv
PY := $(VENV)/bin/python
# What make test needs; the demo needs only the server (and python3 -m venv).
APT_PACKAGES := postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap \
	libtap-parser-sourcehandler-pgtap-perl postgresql-15-plpgsql-check python3-venv
DEMO_APT_PACKAGES := postgresql-15 python3-venv

# sql/state/ holds what runs once (schema, tables, types), sql/code/ what can run
# again (functions, views, triggers, comments, grants); each in file-name order:
# the numeric prefixes are the order. See migrations/README.md.
# The install script: state + code + the version record.
SQL_STATE := $(sort $(wildcard sql/state/*.sql))
SQL_CODE := $(sort $(wildcard sql/code/*.sql))
SQL_VERSION_RECORD := sql/version.sql
INSTALL_SCRIPT := build/eventstore.sql
# The upgrade to this version from the one before: migrations/<from>--<VERSION>/
# holds its hand-written pre.sql and post.sql; the script is pre + code + post +
# the version record. Released upgrade scripts are frozen in migrations/.
UPGRADE_DELTAS := $(wildcard migrations/*--$(VERSION))
UPGRADE_SCRIPTS := $(patsubst migrations/%,build/eventstore--%.sql,$(UPGRADE_DELTAS))
FROZEN_SCRIPTS := $(wildcard migrations/eventstore--*.sql)
PACKAGE_SQL := python/src/pg_eventstore/sql

# $(call build_script,what it is,files): the files, each under a comment naming
# it, with @VERSION@ replaced, into the target.
define build_script
mkdir -p build
{ echo "-- pg_eventstore $(VERSION): $(1), built by make sql from the files named below. Do not edit."; \
  for f in $(2); do printf '\n-- %s\n' "$$f"; cat "$$f"; done; } \
| sed 's/@VERSION@/$(VERSION)/g' > $@
endef

.PHONY: help setup packages demo-packages venv demo-venv sql generate freeze-upgrade install test lint test-in-cluster \
	extension-for-tests soak demo demo-clean demo-env bench bench-peers dist clean clients test-clients

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

packages: ## install the missing apt packages make test needs (as root; never upgrades an installed one)
	@scripts/apt-install-missing.sh $(APT_PACKAGES)

demo-packages:
	@scripts/apt-install-missing.sh $(DEMO_APT_PACKAGES)

$(VENV)/.installed: python/pyproject.toml $(INSTALL_SCRIPT)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e 'python[dev]'
	touch $@

venv: $(VENV)/.installed ## the virtualenv with the package and its dev tools

# The demo's virtualenv: the package as users install it (no dev tools) and pydantic for the
# Order example. A venv that make venv set up already has both, and stays as it is.
$(VENV)/.demo-installed: python/pyproject.toml $(INSTALL_SCRIPT) $(shell find python/src -name '*.py')
	test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing into $(VENV): pg_eventstore from ./python (runtime dependencies only) and pydantic"
	$(PY) -m pip install -q ./python 'pydantic>=2.11'
	touch $@

demo-venv: $(INSTALL_SCRIPT)
	@if [ -f $(VENV)/.installed ]; then $(MAKE) --no-print-directory venv; \
	else $(MAKE) --no-print-directory $(VENV)/.demo-installed; fi

setup: packages venv ## everything make test needs

sql: $(INSTALL_SCRIPT) ## write build/eventstore.sql, this version's upgrade script, and the package's copies

build/eventstore--%.sql: migrations/%/pre.sql migrations/%/post.sql $(SQL_CODE) $(SQL_VERSION_RECORD) VERSION
	$(call build_script,upgrade script $*,migrations/$*/pre.sql $(SQL_CODE) migrations/$*/post.sql $(SQL_VERSION_RECORD))

# Also the package data (pg-eventstore install/upgrade from a wheel): the
# install script, every upgrade script (frozen and built), VERSION.
$(INSTALL_SCRIPT): VERSION $(SQL_STATE) $(SQL_CODE) $(SQL_VERSION_RECORD) $(UPGRADE_SCRIPTS) $(FROZEN_SCRIPTS)
	$(call build_script,install script,$(SQL_STATE) $(SQL_CODE) $(SQL_VERSION_RECORD))
	mkdir -p $(PACKAGE_SQL)
	rm -f $(PACKAGE_SQL)/*.sql
	cp $@ $(PACKAGE_SQL)/eventstore.sql
	cp $(FROZEN_SCRIPTS) $(UPGRADE_SCRIPTS) $(PACKAGE_SQL)/
	cp VERSION $(PACKAGE_SQL)/VERSION

# The first step of the next release, on the commit that released VERSION and
# before any change to sql/: freezes this version's upgrade script into
# migrations/ (recorded in migrations/SHA256SUMS) and removes its delta folder.
freeze-upgrade: $(INSTALL_SCRIPT)
	test -n "$(UPGRADE_SCRIPTS)"
	for s in $(UPGRADE_SCRIPTS); do cp "$$s" migrations/; done
	cd migrations && sha256sum $(notdir $(UPGRADE_SCRIPTS)) >> SHA256SUMS
	git rm -r -q $(UPGRADE_DELTAS)

install: packages $(INSTALL_SCRIPT) ## install as the extension `eventstore` (PGXS)
	sed 's/@VERSION@/$(VERSION)/' eventstore.control.in > build/eventstore.control
	cp $(FROZEN_SCRIPTS) build/
	cp $(INSTALL_SCRIPT) build/eventstore--$(VERSION).sql
	cp pgxs.mk build/Makefile
	$(MAKE) -C build PG_CONFIG=$(PG_CONFIG) VERSION=$(VERSION) install

# The sync client and its tests are generated from their asyncio sources (the pairs are listed in the tool).
generate: venv ## write the sync modules and tests from their async sources (tools/async_to_sync.py)
	$(PY) tools/async_to_sync.py

lint: venv ## sqlfluff, ruff, mypy, and no stale generated sync module
	$(VENV)/bin/sqlfluff lint --processes 2 sql migrations tests/sql examples
	$(PY) tools/async_to_sync.py --check
	$(VENV)/bin/ruff check python scripts tests examples bench tools
	$(VENV)/bin/ruff format --check python scripts tests examples bench tools
	$(VENV)/bin/mypy

test: setup extension-for-tests lint ## lint, pgTAP and pytest against a throwaway cluster
	$(PY) scripts/pgcluster.py run -- $(MAKE) --no-print-directory test-in-cluster

# The CREATE EXTENSION test needs this version's extension files in PostgreSQL's
# share directory: installed here when it is writable (root), else they must be.
extension-for-tests: $(INSTALL_SCRIPT)
	@if [ -w "$$($(PG_CONFIG) --sharedir)/extension" ]; then \
		$(MAKE) --no-print-directory install; \
	elif ! cmp -s $(INSTALL_SCRIPT) "$$($(PG_CONFIG) --sharedir)/extension/eventstore--$(VERSION).sql"; then \
		echo "the extension files of $(VERSION) are not installed: run 'sudo make install' once"; exit 1; \
	fi

# Runs inside `pgcluster.py run`, which exports PGHOST/PGPORT/PGUSER.
test-in-cluster:
	createdb eventstore_pgtap
	psql -X -q -v ON_ERROR_STOP=1 -d eventstore_pgtap -f $(INSTALL_SCRIPT) >/dev/null
	psql -X -q -v ON_ERROR_STOP=1 -d eventstore_pgtap -f examples/orders/orders.sql >/dev/null
	psql -X -q -v ON_ERROR_STOP=1 -d eventstore_pgtap -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION plpgsql_check'
	pg_prove --failures --dbname eventstore_pgtap tests/sql/*/*.sql
	$(MAKE) --no-print-directory test-clients
	$(VENV)/bin/pytest tests/python

# The clients in other languages (examples/clients/, docs/other-languages.md):
# Node.js with npm's `pg` (installed by npm ci from the lock file) and Java with
# Debian's JDBC driver (installed when missing, nothing else upgraded).
NODE_CLIENT := examples/clients/node
JAVA_CLIENT := examples/clients/java
JDBC_JAR := /usr/share/java/postgresql.jar

$(NODE_CLIENT)/node_modules/.package-lock.json: $(NODE_CLIENT)/package-lock.json
	cd $(NODE_CLIENT) && npm ci --no-audit --no-fund --loglevel=error

$(JDBC_JAR):
	@if [ "$$(id -u)" != 0 ]; then echo "missing $@ (run as root: apt-get install libpostgresql-jdbc-java)"; exit 1; fi
	@echo "installing the apt package libpostgresql-jdbc-java (the JDBC driver for the Java client)"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade libpostgresql-jdbc-java >/dev/null

clients: $(NODE_CLIENT)/node_modules/.package-lock.json $(JDBC_JAR) ## the Node.js and Java clients' dependencies

# Runs inside `pgcluster.py run` (PGHOST/PGPORT/PGUSER); each client makes its own database.
test-clients: clients $(INSTALL_SCRIPT)
	cd $(NODE_CLIENT) && node --test
	rm -rf build/clients/java && javac -Xlint:all -Werror -d build/clients/java -cp $(JDBC_JAR) $(JAVA_CLIENT)/*.java
	java -cp build/clients/java:$(JDBC_JAR) ClientCheck

soak: setup extension-for-tests ## the reliability tests, longer: 2-minute feed, 20 s crash load, 5,000 fuzz examples
	FEED_TEST_SECONDS=120 CRASH_LOAD_SECONDS=20 FUZZ_EXAMPLES=5000 $(PY) scripts/pgcluster.py run -- \
		$(VENV)/bin/pytest tests/python/test_feed.py tests/python/test_crash.py tests/python/test_hostile_input.py

# Options for the demo, e.g. make demo DEMO_ARGS='--orders 500' (see python -m examples.orders.demo --help).
DEMO_ARGS ?=
# The local demo cluster: a link to its data, kept outside the checkout (see scripts/pgcluster.py).
DEMO_DATADIR ?= .pgdata
DEMO_DATABASE := eventstore_demo
DEMO := $(PY) -m examples.orders.demo
# How the closing hint calls demo-env: with DEMO_DATADIR when it is not the default.
DEMO_ENV_CALL := make -s demo-env$(if $(filter-out .pgdata,$(DEMO_DATADIR)), DEMO_DATADIR=$(DEMO_DATADIR))

demo: demo-packages demo-venv ## the Order scenario and its report, in a local cluster (./.pgdata links to it) or $DATABASE_URL
	@if [ -n "$${DATABASE_URL:-}" ]; then \
		$(DEMO) $(DEMO_ARGS); \
	else \
		$(PY) scripts/pgcluster.py run --datadir $(DEMO_DATADIR) --database $(DEMO_DATABASE) -- $(DEMO) $(DEMO_ARGS); \
	fi
	@printf '%s\n' '' 'Next steps, in this shell, from $(CURDIR):' \
		'  eval "$$($(DEMO_ENV_CALL))"' \
		'  pg-eventstore status' \
		'  pg-eventstore projections status' \
		'  psql "$$DATABASE_URL" -c "SELECT status, count(*) FROM orders.order_projections GROUP BY status"' \
		'make demo-clean stops the local cluster and deletes its data.'

demo-env: ## print the export lines for the demo's database and pg-eventstore: eval "$(make -s demo-env)"
	@if [ -n "$${DATABASE_URL:-}" ]; then \
		printf 'export DATABASE_URL=%q\nexport PATH=%q:"$$PATH"\n' "$$DATABASE_URL" "$(abspath $(VENV))/bin"; \
	else \
		python3 scripts/pgcluster.py env --datadir $(DEMO_DATADIR) --database $(DEMO_DATABASE) --bin $(VENV)/bin; \
	fi

demo-clean: ## stop the demo cluster and delete its data and ./.pgdata
	python3 scripts/pgcluster.py remove --datadir $(DEMO_DATADIR)

# The peers the benchmark measures next to us (bench/README.md, "Peers"), installed from their registries
# at bench time, nothing of theirs kept in the repository: Message DB from npm into build/peers/ (its
# database/install.sh runs against the bench's cluster), eventsourcing from PyPI into the venv (the
# `bench` extra of python/pyproject.toml, which pins its version).
MESSAGE_DB_VERSION := 1.3.1
PEERS_DIR := build/peers
MESSAGE_DB := $(PEERS_DIR)/node_modules/@eventide/message-db

$(MESSAGE_DB)/.installed-$(MESSAGE_DB_VERSION):
	mkdir -p $(PEERS_DIR)
	npm install --prefix $(PEERS_DIR) --no-save --no-audit --no-fund --loglevel=error \
		@eventide/message-db@$(MESSAGE_DB_VERSION)
	touch $@

$(VENV)/.bench-installed: $(VENV)/.installed python/pyproject.toml
	$(PY) -m pip install -q -e 'python[dev,bench]'
	touch $@

bench-peers: $(MESSAGE_DB)/.installed-$(MESSAGE_DB_VERSION) $(VENV)/.bench-installed ## install the peers make bench measures

# Its own throwaway cluster with durable settings; about 38 minutes on 2 cores.
# Knobs: BENCH_SECONDS, BENCH_RUNS, BENCH_QUICK=1, BENCH_ONLY (see bench/README.md).
bench: setup sql bench-peers ## run the benchmarks (not part of make test) and write bench/results/
	BENCH_MESSAGE_DB=$(MESSAGE_DB) $(PY) bench/run.py

dist: venv ## build the wheel into dist/
	$(PY) -m pip wheel -q --no-deps -w dist ./python

clean:
	rm -rf build dist $(PACKAGE_SQL)
