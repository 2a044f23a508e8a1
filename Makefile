# Two commands from a fresh machine: `make demo` and `make test`.
# Both create .venv when it is absent and install the package with Paddle's CPU build into it.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: demo test install clean

install: $(INSTALLED)

# Reinstall when the package's requirements change.
$(INSTALLED): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[cpu,dev]'
	touch $(INSTALLED)

# The whole pipeline on the embedded digits: the architecture contract's table, the dataset
# report, training, then evaluation of the best checkpoint on the test split.
demo: $(INSTALLED)
	$(PY) tools/summary.py
	rm -rf output/demo
	$(PY) tools/train.py -o output.run_name=demo
	$(PY) tools/infer.py --weights output/demo/checkpoints/best.pdparams --eval

test: $(INSTALLED)
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
