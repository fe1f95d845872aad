# modelgov — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup migrate seed lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)
	@mkdir -p var/media
	@# The keys every command reads (config/settings.py loads var/.env); an older
	@# var/secret_key is carried over so existing sessions stay valid.
	@test -s var/.env || (umask 077 && $(BIN)/python -c "import pathlib, secrets; old = pathlib.Path('var/secret_key'); key = old.read_text().strip() if old.is_file() else secrets.token_urlsafe(50); pathlib.Path('var/.env').write_text(f'SECRET_KEY={key}\nAUDIT_SIGNING_KEY={secrets.token_urlsafe(32)}\n')")

# The embedded default: SQLite under var/, tasks in-process, demo data and users.
run: setup
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/python manage.py seed_demo
	$(BIN)/gunicorn config.wsgi:application \
		--bind $(HOST):$(PORT) --workers 2 --threads 4 --access-logfile - --graceful-timeout 5

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf var/modelgov.sqlite3* var/static
