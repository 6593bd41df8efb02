# `make reports` regenerates every report (the main job); `make test` runs the test suite.
# Both create the virtualenv .venv on first use and install the package into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: reports test test-fast notebooks benchmarks clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable ".[dev]"
	# LXT, the AttnLRP reference of tests/reference/test_lxt_reference.py, without the requirements it
	# declares for language models (bitsandbytes, open_clip); its import needs transformers 4.x.
	$(BIN)/python -m pip install --quiet --no-deps lxt==2.1
	$(BIN)/python -m pip install --quiet --constraint constraints.txt "transformers==4.51.3" tabulate
	touch $(STAMP)

reports: $(STAMP)
	$(BIN)/python -m nn_interpretability.reports

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=25

# Unit and reference tests only, without executing the notebooks.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/reference

# Re-execute the committed notebooks in place, so that they carry the outputs of the default run.
notebooks: $(STAMP)
	$(BIN)/python -m nn_interpretability.reports --in-place

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/workloads.py
	$(BIN)/python benchmarks/every_class.py
	$(BIN)/python benchmarks/coverage.py
	$(BIN)/python benchmarks/lrp_transformers.py
	$(BIN)/python benchmarks/cam_family.py
	$(BIN)/python benchmarks/shapley.py

clean:
	rm -rf reports/executed reports/html reports/figures reports/index.html
