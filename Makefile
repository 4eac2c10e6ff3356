# The two commands of the README: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := common services/intake services/referrals services/notifications gateway infra/idp infra/dev web
# The browser tests drive Debian's Chromium (infra/dev/install-browser.sh): Playwright must never
# download browsers of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: venv migrate run test lint translations clean

$(STAMP): requirements.txt $(addsuffix /pyproject.toml,$(PACKAGES))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt $(addprefix -e ,$(PACKAGES))
	touch $@

venv: $(STAMP)

migrate: venv
	$(BIN)/python -m buendnis_common.migrate all

# supervisor (buendnis_dev.supervise) runs the Procfile's processes and starts a crashed one again.
run: migrate
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m buendnis_dev.supervise Procfile

test: venv
	infra/dev/install-browser.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
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

clean:
	rm -rf var
