# Tablero. `make run` serves the app on http://127.0.0.1:8000 as a user runs it (DEBUG off);
# `make dev` serves it for development (DEBUG on, reloading); `make test` runs every test.
# Both create .venv with the machine's python3 first; nothing else needs installing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
CHROMIUM := /usr/bin/chromium
# Kept out of the translation catalogue (tests/test_i18n.py checks this list).
MESSAGES_IGNORE := --ignore '.venv/*' --ignore 'staticfiles/*' --ignore 'tests/*' \
	--ignore 'bench/*' --ignore 'node_modules/*' --ignore 'test-artifacts/*' --ignore '.demo/*'

.PHONY: run dev test lint format demo messages clean lock .env

# (Re)install whenever the lock changes; an existing .venv is reused. Every package comes from
# requirements/dev.lock, pinned with hashes; then Tablero itself, without resolving again.
LOCK := requirements/dev.lock
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Pin every dependency again after changing pyproject.toml: production.lock for servers
# (the application and its production extra), dev.lock for development and CI.
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --generate-hashes --universal \
	--python-version 3.11 --custom-compile-command "make lock" --quiet
lock: $(STAMP)
	$(UV_COMPILE) --extra production -o requirements/production.lock
	$(UV_COMPILE) --extra production --group pyproject.toml:dev -o $(LOCK)

# Written once with fresh secrets (mode 0600); never overwritten, only completed with a secret
# a newer Tablero needs (config/initenv.py), so it runs every time.
.env: | $(STAMP)
	$(BIN)/python -m config.initenv .env

# `make run` and `make demo` serve Tablero the way a user runs it: DEBUG off (whatever .env
# says: the environment wins over .env), Tablero's own error pages, static files collected and
# served by WhiteNoise; plain http on this machine, so no https redirect or https-only cookies.
run demo: export DEBUG = false
run demo: export SECURE_SSL_REDIRECT = false
run demo: export SESSION_COOKIE_SECURE = false
run demo: export CSRF_COOKIE_SECURE = false
run demo: export SECURE_HSTS_SECONDS = 0
# Two malloc arenas per process instead of glibc's eight per core: under ASGI every page
# request runs in a thread of its own, and the arenas those threads spread over keep what they
# freed. With two, a worker settles 10-15 MB lower (bench/memory.py). The consumer's too.
run demo: export MALLOC_ARENA_MAX = 2
# collectstatic again whenever a static file changes (WhiteNoise serves what it gathered). It
# needs no task queue: without one it opens none (make demo's data folder may not exist yet).
STATIC_STAMP := $(VENV)/.static-stamp
$(STATIC_STAMP): $(STAMP) $(shell find static -type f) | .env
	TASK_QUEUE_IMMEDIATE=true $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	touch $(STATIC_STAMP)
run demo: $(STATIC_STAMP)

# The web server and one task consumer (background checks, runs, costs) start together; when
# the server stops (Ctrl-C, or a signal) the consumer is stopped too.
CONSUMER := $(BIN)/python manage.py run_huey --workers 2
# The ASGI server: the pages and the gateway (/v1/) from one process (config/asgi.py).
SERVER := $(BIN)/uvicorn config.asgi:application --host $(HOST) --port $(PORT) --no-server-header
run: $(STAMP) .env
	$(BIN)/python manage.py migrate --noinput
	@echo "Tablero is starting on http://$(HOST):$(PORT)/ (first visit: create the owner account)"
	@$(CONSUMER) & consumer=$$!; \
	trap 'kill $$consumer 2>/dev/null' EXIT INT TERM; \
	$(SERVER)

# For development: DEBUG on (Django's debug pages, static files straight from static/), the
# server reloading on every change, and the task consumer beside it.
dev: export DEBUG = true
dev: $(STAMP) .env
	$(BIN)/python manage.py migrate --noinput
	@echo "Tablero (development, DEBUG on) is starting on http://$(HOST):$(PORT)/"
	@$(CONSUMER) & consumer=$$!; \
	trap 'kill $$consumer 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# A demo team with a connection in every state, against the fake provider on loopback.
DEMO_UPSTREAM_PORT ?= 8765
# It keeps its own database in .demo/, apart from the one `make run` uses.
DEMO_DATABASE_URL ?= sqlite:///$(CURDIR)/.demo/db.sqlite3
demo: export DATABASE_URL = $(DEMO_DATABASE_URL)
demo: $(STAMP) .env
	mkdir -p .demo
	$(BIN)/python manage.py migrate --noinput
	@$(BIN)/python -m fakeprovider --port $(DEMO_UPSTREAM_PORT) & fake=$$!; \
	trap 'kill $$fake $$consumer 2>/dev/null' EXIT INT TERM; \
	export TABLERO_ALLOWED_UPSTREAM_HOSTS=127.0.0.1; \
	$(BIN)/python manage.py demo_seed --upstream http://127.0.0.1:$(DEMO_UPSTREAM_PORT)/v1 \
		--site http://$(HOST):$(PORT)/ && \
	{ $(CONSUMER) & consumer=$$!; \
	$(SERVER); }

# The compiled catalogues (.mo) are committed, so tests need no gettext tools.
test: $(STAMP)
	@test -x $(CHROMIUM) || echo "Chromium not installed (apt-get install chromium): browser tests (tests/e2e) will be skipped."
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Regenerate the catalogues after changing strings (needs GNU gettext); commit the .po and .mo.
messages: $(STAMP) .env
	@command -v xgettext >/dev/null || { echo "GNU gettext is missing: apt-get install gettext"; exit 1; }
	$(BIN)/python manage.py makemessages --locale es --no-obsolete $(MESSAGES_IGNORE)
	$(BIN)/python manage.py compilemessages --locale es $(MESSAGES_IGNORE)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache test-artifacts
