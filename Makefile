# The two commands: `make demo` and `make test`. Both work on a fresh machine with
# only Python 3.11+ present.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test e2e install lint docs fuzz audit-deps bench load build package-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests example bench
	$(BIN)/ruff format --check src tests example bench
	$(BIN)/bandit -q -c pyproject.toml -r src

# AUTH_USER_MODEL cannot change inside one process: the account flows on a user model
# that logs in by e-mail run in a second pass (collecting no tests there exits 5: a failure).
test: lint
	$(BIN)/pytest $(PYTEST_ARGS)
	$(BIN)/pytest --ds=tests.settings_email_user tests/test_accounts_email_user.py tests/test_email_user_admin.py tests/test_unicode_email_user.py tests/test_social_email_user.py

# The browser tests alone (Debian's Chromium through Playwright; `make test` runs them
# too). They rewrite the screenshots in docs/screenshots/ that docs/demo.md shows.
e2e: $(STAMP)
	TESSERA_SCREENSHOTS=docs/screenshots $(BIN)/pytest -p no:cacheprovider -m browser

# The long run of the property tests and of schemathesis over every operation (the suite
# runs both with few examples). Hypothesis keeps what it finds in .hypothesis/.
fuzz: $(STAMP)
	TESSERA_HYPOTHESIS_PROFILE=fuzz TESSERA_SCHEMATHESIS_EXAMPLES=300 \
		$(BIN)/pytest -p no:cacheprovider tests/test_fuzz_parsers.py tests/test_schemathesis.py

# Known vulnerabilities in the installed dependencies (skipped, saying why, where the
# vulnerability service cannot be reached).
audit-deps: $(STAMP)
	$(BIN)/python .ci/audit_deps.py

# The documentation site (MkDocs, Material theme) in site/; --strict fails on a broken
# link, a missing anchor or a page left out of the navigation.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

demo: $(STAMP)
	cd example && ../$(BIN)/python manage.py migrate --noinput
	cd example && ../$(BIN)/python manage.py demo_seed
	cd example && ../$(BIN)/python manage.py runserver 127.0.0.1:8000

# wrk comes from Debian's packages when it is missing and apt-get can install it.
bench: $(STAMP)
	@command -v wrk >/dev/null || ! command -v apt-get >/dev/null || [ "$$(id -u)" != 0 ] || \
		{ apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# locust comes from the `bench` extra, installed here rather than with dev.
load: $(STAMP)
	$(BIN)/python -m pip show --quiet locust >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/load.py $(LOAD_ARGS)

build: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build

# The wheel installs into a clean venv (dependencies from the index) and carries its
# migrations and templates.
package-check: build
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PYTHON) -m venv "$$tmp/venv" && \
	"$$tmp/venv/bin/pip" install --quiet dist/*.whl && \
	cd "$$tmp" && venv/bin/python -c "import tessera, importlib.resources as r; \
	files = r.files('tessera'); \
	assert (files / 'migrations' / '0001_initial.py').is_file(); \
	assert (files / 'templates' / 'tessera' / 'email').is_dir(); \
	print('wheel OK: tessera', tessera.__version__)"

clean:
	rm -rf $(VENV) build dist example/db.sqlite3
