# The two commands of the README: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PACKAGES := common services/intake services/referrals services/notifications gateway infra/idp infra/dev web
# The browser tests drive Debian's Chromium (infra/dev/install-browser.sh): Playwright must never
# download browsers of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: venv migrate run test lint translations clean compose-up compose-down test-compose

# The installer: uv, pinned, put beside the venv's packages ($(VENV)/uv) by the machine's pip. It
# downloads in parallel and keeps what it downloaded in its cache (~/.cache/uv, UV_CACHE_DIR), so a
# second clone on the same machine installs without downloading; a new machine downloads once.
# The venv is made without pip (ensurepip costs seconds); uv puts pip into it, pinned.
UV_VERSION := 0.13.8
UV := $(VENV)/uv/bin/uv
UV_INSTALL := $(UV) pip install --quiet --python $(BIN)/python
# Both installing rules start with it: a venv made before uv (or with another version) gets it too.
ENSURE_UV := $(UV) --version 2>/dev/null | grep -q "^uv $(UV_VERSION) " || $(PYTHON) -m pip \
	install --quiet --disable-pip-version-check --upgrade --target $(VENV)/uv "uv==$(UV_VERSION)"

# The runtime set (make run, the image) and, for make test and make lint, the test tools on top:
# `make run` never installs what only the tests use.
$(STAMP): requirements.txt $(addsuffix /pyproject.toml,$(PACKAGES))
	test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	$(ENSURE_UV)
	# The platform's packages are built in this venv (no isolated build env per package).
	$(UV_INSTALL) "pip==23.2.1" "setuptools==80.9.0"
	$(UV_INSTALL) -r requirements.txt --no-build-isolation $(addprefix -e ,$(PACKAGES))
	touch $@

$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(ENSURE_UV)
	$(UV_INSTALL) -r requirements-test.txt
	touch $@

venv: $(STAMP)

migrate: venv
	$(BIN)/python -m buendnis_common.migrate all

# supervisor (buendnis_dev.supervise) runs the Procfile's processes and starts a crashed one again.
run: migrate
	@echo "Metrics (Prometheus) at http://127.0.0.1:<port>/metrics: gateway 9100, intake 9101,"
	@echo "  referrals 9102, notifications 9103, web 9104, workers 9110-9113, beats 9120-9123"
	@echo "  (gateway, intake, referrals, notifications); all of them as scrape targets:"
	@echo "  prometheus --config.file=infra/observability/prometheus-local.yml"
	LOG_FORMAT="$${LOG_FORMAT:-text}" PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m buendnis_dev.supervise Procfile

# Most tests wait on processes (workers, due reminders), not on the CPU: the files run on
# TEST_WORKERS pytest-xdist workers at once (a file's tests together, on one worker), with every
# wait twice as patient; then the fault suite, which measures what load does, runs on its own.
TEST_WORKERS ?= 2
test: $(TEST_STAMP)
	infra/dev/install-browser.sh
	infra/dev/install-prometheus.sh
	BUENDNIS_TEST_PATIENCE=2 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile \
		-m "not alone" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m alone $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check .

# The pages' texts: German message ids from the code, the English catalogue updated and compiled.
TRANSLATIONS := web/web/translations
translations: venv
	cd web && ../$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location \
		--sort-output -o web/translations/messages.pot .
	test -f $(TRANSLATIONS)/en/LC_MESSAGES/messages.po || \
		$(BIN)/pybabel init -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) -l en
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --no-fuzzy-matching \
		--ignore-obsolete
	$(BIN)/pybabel compile -d $(TRANSLATIONS)

# The production stack (docker-compose.yml) on this machine with podman, Keycloak and Mailpit
# replaced by the CI stand-ins (docker-compose.ci.yml); the base images are built locally from
# Debian packages (infra/compose/base/build.sh, cached). tests/compose/test_compose_stack.py.
# compose-up leaves the stack running (gateway :8000, identity provider :8080, web front end
# :8090); compose-down stops it and deletes its volumes.
compose-up: venv
	infra/compose/install-podman.sh
	$(BIN)/python infra/compose/stack.py up

compose-down: venv
	$(BIN)/python infra/compose/stack.py down

test-compose: $(TEST_STAMP)
	infra/compose/install-podman.sh
	$(BIN)/python infra/compose/stack.py check
	BUENDNIS_COMPOSE_TEST=1 $(BIN)/python -m pytest tests/compose -q -s -p no:cacheprovider

clean:
	rm -rf var
