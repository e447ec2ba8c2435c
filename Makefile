# The runbook's entry points. `make run` and `make test` do all set-up themselves:
# they need python3 and make, nothing else.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := runbook,notebooks,bench,test,docs
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
BUILD := build
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
# It measures throughput: never beside another run.
ALONE := notebooks/08_benchmark.ipynb
# The site: notebooks/ holds its config (conf.py, index.md, _ext/). Warnings fail the build.
SPHINX := $(BIN)/sphinx-build -W --keep-going -q -b html
SITE := $(BUILD)/site
SITE_SOURCES := notebooks/conf.py notebooks/index.md notebooks/_ext notebooks/ci_parameters.yml

.PHONY: help install browser proxy hey run test lint unit nbval docs sitecheck lab refresh normalize constraints clean

help:
	@echo "make run      execute every notebook against the bundled upstream -> $(BUILD)/notebooks/, then the site -> $(SITE)/"
	@echo "make test     normalizer check, linters, unit tests, the site check (chromium), notebook runs with other parameters, strict nbval"
	@echo "make unit     the unit tests only (no notebook runs, no browser)"
	@echo "make lint     ruff check, ruff format --check, mypy"
	@echo "make docs     the site from the committed notebooks -> $(SITE)/ (no execution)"
	@echo "make lab      JupyterLab on notebooks/"
	@echo "make refresh  re-execute the notebooks in place and normalize them (to commit new outputs)"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $@

install: $(STAMP)

# The site check drives Debian's chromium (Playwright never downloads a browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	    else echo "make test needs Debian's chromium on PATH: sudo apt-get install chromium" >&2; exit 1; fi; }

# Notebook 10 and tests/test_proxy.py put Debian's nginx in front of the services. Without
# root it cannot be installed here: they then say so and skip, they never fake a proxy.
proxy:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq nginx; \
	    else echo "nginx is not installed (sudo apt-get install nginx): notebook 10 and its tests will skip" >&2; fi; }

# tests/bench/test_hey.py cross-checks the load generator with Debian's hey (a compiled one).
# Without root it cannot be installed here: those tests then say so and skip.
hey:
	@command -v hey >/dev/null 2>&1 || { \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq hey; \
	    else echo "hey is not installed (sudo apt-get install hey): the load generator's cross-check will skip" >&2; fi; }

run: $(STAMP) proxy
	$(BIN)/python -m support.devtools.nbrun $(NOTEBOOKS) --output-dir $(BUILD)/notebooks
	rm -rf $(BUILD)/site-src $(SITE) $(BUILD)/doctrees
	mkdir -p $(BUILD)/site-src
	cp -r $(SITE_SOURCES) $(BUILD)/notebooks/*.ipynb $(BUILD)/site-src/
	$(SPHINX) -d $(BUILD)/doctrees $(BUILD)/site-src $(SITE)
	$(BIN)/python -m support.devtools.sitecheck $(SITE)
	@echo
	@echo "Executed notebooks are in $(BUILD)/notebooks/ (open them with: make lab, or any Jupyter)."
	@echo "The site, built from them: open $(SITE)/index.html, or serve it: $(BIN)/python -m http.server -d $(SITE)"

# The site from the committed notebooks, as they were validated (nothing is executed).
docs: $(STAMP)
	rm -rf $(SITE) $(BUILD)/doctrees
	$(SPHINX) -d $(BUILD)/doctrees notebooks $(SITE)
	$(BIN)/python -m support.devtools.sitecheck $(SITE)
	@echo "Open $(SITE)/index.html, or serve it: $(BIN)/python -m http.server -d $(SITE)"

sitecheck:
	$(BIN)/python -m support.devtools.sitecheck $(SITE)

# Fast checks first: a lint error fails in seconds, not after the notebooks have run.
# Unit tests and strict nbval run two at a time (pytest-xdist: a module, or a notebook, stays
# on one worker): they mostly wait on sockets and kernels. The notebook runs with other
# parameters schedule their own pairs, and the benchmark notebook always runs alone.
test: $(STAMP) browser proxy hey
	$(BIN)/python -m support.devtools.nbnormalize --check $(NOTEBOOKS)
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -n 2 --dist loadscope -m "not notebooks and not site" tests
	$(BIN)/python -m pytest -m "notebooks or site" tests
	$(BIN)/python -m pytest -n 2 --dist loadscope $(NBVAL) $(filter-out $(ALONE),$(NOTEBOOKS))
	$(BIN)/python -m pytest $(NBVAL) $(ALONE)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadscope -m "not notebooks and not site" tests

nbval: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadscope $(NBVAL) $(filter-out $(ALONE),$(NOTEBOOKS))
	$(BIN)/python -m pytest $(NBVAL) $(ALONE)

# --allow-root: containers run as root, and JupyterLab refuses root without it.
# No news pop-up: the project's readers came for the notebooks (and may be offline).
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root) \
	    --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate

refresh: $(STAMP)
	$(BIN)/python -m support.devtools.nbrun $(NOTEBOOKS) --inplace
	$(BIN)/python -m support.devtools.nbnormalize $(NOTEBOOKS)
	$(BIN)/python -m support.devtools.readme_figures

normalize: $(STAMP)
	$(BIN)/python -m support.devtools.nbnormalize $(NOTEBOOKS)

# Re-pin constraints.txt to what the venv holds now (after changing pyproject.toml).
constraints:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(BUILD) .pytest_cache
