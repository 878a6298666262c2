# The two commands (see README):  `make lab`  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8888

.PHONY: setup lab notebooks slides site student test bench screenshots clean

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

## Lecture mode, static: a reveal.js deck of each executed notebook in slides/ (NN_topic.slides.html, offline:
## reveal.js, plotly.js and MathJax are copied to slides/_static/). A notebook is executed only when results/
## lacks it or its source is newer (`make notebooks` runs them all).
NOTEBOOK_SOURCES := $(sort $(wildcard notebooks/[0-9][0-9]_*.py))
EXECUTED := $(patsubst notebooks/%.py,results/%.ipynb,$(NOTEBOOK_SOURCES))

results/%.ipynb: notebooks/%.py | setup
	OMP_NUM_THREADS=1 $(VENV)/bin/diffviz run $< --out results

slides: setup $(EXECUTED)
	OMP_NUM_THREADS=1 $(PY) scripts/slides.py $(EXECUTED) --out slides

## The course site: the executed notebooks (FAST=True, two at a time; only those missing or older than their source)
## and docs/ as a static Sphinx site in site/, built offline; a cell error, stderr output or Sphinx warning fails it.
## Open site/index.html, or publish the folder on any static host (README: "The course site").
site: setup
	$(MAKE) -j2 $(EXECUTED)
	OMP_NUM_THREADS=1 $(PY) scripts/site.py $(EXECUTED) --out site -j 2

## The whole test suite (what .ci/run calls).
test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest

bench: setup
	$(PY) benchmarks/run.py

## Refresh the README's dashboard and slide pictures: the browser tests' screenshots, copied to docs/img/.
screenshots: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q tests/test_browser.py tests/test_slides.py tests/test_browser_exercises.py tests/test_site.py
	mkdir -p docs/img
	for f in artifacts/browser/[0-9][0-9]_*[a-z].png; do cp "$$f" "docs/img/dashboard_$$(basename $$f)"; done
	cp artifacts/browser/slides_live.png artifacts/browser/slides_static.png docs/img/
	cp artifacts/browser/exercise_wrong.png artifacts/browser/exercise_right.png docs/img/
	cp artifacts/browser/site_index.png artifacts/browser/site_notebook.png docs/img/

clean:
	rm -rf $(VENV) $(VENV).constraints.txt .pytest_cache results artifacts slides site build/site-src build/site-doctrees build/site-html build/jupyter_execute
