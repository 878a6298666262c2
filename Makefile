# The two commands (see README):  `make lab`  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8888

.PHONY: setup lab notebooks student test bench screenshots clean

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $@

setup: $(VENV)/.installed

## Main job: JupyterLab on notebooks/ (add --allow-root when running as root).
lab: setup
	$(VENV)/bin/jupyter lab notebooks --port $(PORT) $(if $(filter 0,$(shell id -u)),--allow-root,)

## Headless: execute every notebook (FAST=True) and write results/ (executed notebooks + figures JSON).
notebooks: setup
	$(VENV)/bin/diffviz run --all --out results

## Workshop: notebooks/student/NN_topic.ipynb (solution regions stubbed, outputs cleared) and the solutions' package data.
student: setup
	$(PY) scripts/make_student.py

## The whole test suite (what .ci/run calls).
test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest

bench: setup
	$(PY) benchmarks/run.py

## Refresh the README's dashboard pictures: the browser test's screenshots, copied to docs/img/.
screenshots: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q tests/test_browser.py
	mkdir -p docs/img
	for f in artifacts/browser/[0-9][0-9]_*[a-z].png; do cp "$$f" "docs/img/dashboard_$$(basename $$f)"; done

clean:
	rm -rf $(VENV) $(VENV).constraints.txt .pytest_cache results artifacts
