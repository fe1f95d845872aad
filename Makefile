# modelgov — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# The embedded default's data (database, keys, files), `var` beside the code unless VAR_DIR
# names another; made absolute and passed on, so that config/settings.py reads the same one.
ifneq ($(words $(or $(VAR_DIR),var)),1)
$(error VAR_DIR must be one path without spaces, not '$(VAR_DIR)')
endif
override VAR_DIR := $(abspath $(or $(VAR_DIR),var))
export VAR_DIR

.PHONY: run test setup migrate seed lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)
	@mkdir -p "$$VAR_DIR/media"
	@# The keys every command reads (config/settings.py loads $$VAR_DIR/.env); an older
	@# $$VAR_DIR/secret_key is carried over so existing sessions stay valid.
	@test -s "$$VAR_DIR/.env" || (umask 077 && $(BIN)/python -c "import os, pathlib, secrets; var = pathlib.Path(os.environ['VAR_DIR']); old = var / 'secret_key'; key = old.read_text().strip() if old.is_file() else secrets.token_urlsafe(50); (var / '.env').write_text(f'SECRET_KEY={key}\nAUDIT_SIGNING_KEY={secrets.token_urlsafe(32)}\n')")

# The embedded default: SQLite under $$VAR_DIR, tasks in-process, demo data and users.
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
	rm -rf "$$VAR_DIR"/modelgov.sqlite3* "$$VAR_DIR/static"
