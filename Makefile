# kumamachi: `make run` serves the app, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: install run test lint migrate seed serve clean messages bench bench-load

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet '.[dev]'
	touch $(STAMP)

# axe-core, injected into pages by the browser tests (no CDN: from the npm registry).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch node_modules/.installed

# The English catalogue is compiled from locale/en/LC_MESSAGES/django.po.
messages: $(STAMP)
	$(BIN)/python manage.py compilemessages --ignore=.venv --ignore=node_modules -v0

install: $(STAMP) messages

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py load_seed

run: seed
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

test: lint node_modules/.installed
	$(BIN)/python -m pytest

# The production setup, locally: PostgreSQL (DATABASE_URL, default below), static files
# collected, migrations applied, gunicorn on 127.0.0.1:$(PORT) with WEB_CONCURRENCY workers.
# DJANGO_SECRET_KEY must come from the environment. Production cookies are Secure and http
# is redirected to https: to log in over plain http on this machine, also set
# DJANGO_INSECURE_LOCAL=1 (refused unless DJANGO_ALLOWED_HOSTS is only the loopback).
serve: install
	@test -n "$$DJANGO_SECRET_KEY" || { echo "make serve: DJANGO_SECRET_KEY is not set (e.g. export DJANGO_SECRET_KEY=\$$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))'))" >&2; exit 2; }
	export DJANGO_ENV=production DATABASE_URL="$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kumamachi}" DJANGO_ALLOWED_HOSTS="$${DJANGO_ALLOWED_HOSTS:-127.0.0.1,localhost}"; \
	$(BIN)/python manage.py collectstatic --noinput -v0 && \
	$(BIN)/python manage.py migrate --noinput -v0 && \
	exec $(BIN)/gunicorn kumamachi.wsgi --bind 127.0.0.1:$(PORT) --workers "$${WEB_CONCURRENCY:-2}" --access-logfile - --forwarded-allow-ips 127.0.0.1

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache node_modules

# Benchmarks (BENCHMARKS.md): fresh SQLite (and PostgreSQL with BENCH_PG=1 or a postgres
# DATABASE_URL) databases, seed, measure, generate BENCH_SCALE (large or smoke), measure,
# then the load test (gunicorn + wrk; BENCH_LOAD=0 skips it). Writes bench/results.json and
# prints the report. See bench/README.md for the variables.
BENCH_SCALE ?= large
bench: $(STAMP)
	BENCH_SCALE=$(BENCH_SCALE) $(BIN)/python -m bench.run

# The load test alone, on a database kept by BENCH_KEEP=1 (DATABASE_URL names it), e.g.
#   make bench-load DATABASE_URL=postgres://postgres@127.0.0.1:5432/kumamachi_bench
bench-load: $(STAMP)
	BENCH_SCALE=$(BENCH_SCALE) $(BIN)/python -m bench.load

# The soak test (bench/soak.py): gunicorn in the production configuration under readers and
# ward staff saving at once for SOAK_SECONDS, on a database of its own (kumamachi_soak on the
# PostgreSQL server of DATABASE_URL or 127.0.0.1:5432; SOAK_SQLITE=/path for SQLite).
# Fails on any 5xx or error in the server's log. See bench/README.md.
SOAK_SECONDS ?= 180
.PHONY: soak
soak: $(STAMP)
	SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python -m bench.soak
