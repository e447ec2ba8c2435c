# The runbook's entry points. `make run` and `make test` do all set-up themselves:
# they need python3 and make, nothing else.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := notebooks,test
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
BUILD := build
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: help install run test unit nbval lab refresh normalize constraints clean

help:
	@echo "make run      execute every notebook against the bundled upstream -> $(BUILD)/notebooks/"
	@echo "make test     normalizer check, unit tests, notebook runs with other parameters, strict nbval"
	@echo "make lab      JupyterLab on notebooks/"
	@echo "make refresh  re-execute the notebooks in place and normalize them (to commit new outputs)"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m support.nbrun $(NOTEBOOKS) --output-dir $(BUILD)/notebooks
	@echo
	@echo "Executed notebooks are in $(BUILD)/notebooks/ (open them with: make lab, or any Jupyter)."

test: $(STAMP)
	$(BIN)/python -m support.nbnormalize --check $(NOTEBOOKS)
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest $(NBVAL) $(NOTEBOOKS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests -m "not notebooks"

nbval: $(STAMP)
	$(BIN)/python -m pytest $(NBVAL) $(NOTEBOOKS)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

refresh: $(STAMP)
	$(BIN)/python -m support.nbrun $(NOTEBOOKS) --inplace
	$(BIN)/python -m support.nbnormalize $(NOTEBOOKS)

normalize: $(STAMP)
	$(BIN)/python -m support.nbnormalize $(NOTEBOOKS)

# Re-pin constraints.txt to what the venv holds now (after changing pyproject.toml).
constraints:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(BUILD) .pytest_cache
