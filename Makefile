# The two commands: `make demo` and `make test`. Both work on a fresh machine with
# only Python 3.11+ present.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test install lint bench build clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests example bench

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

demo: $(STAMP)
	cd example && ../$(BIN)/python manage.py migrate --noinput
	cd example && ../$(BIN)/python manage.py demo_seed
	cd example && ../$(BIN)/python manage.py runserver 127.0.0.1:8000

bench: $(STAMP)
	$(BIN)/python bench/run.py

build: $(STAMP)
	$(BIN)/python -m build

clean:
	rm -rf $(VENV) build dist example/db.sqlite3
