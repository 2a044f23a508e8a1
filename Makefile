# Two commands from a fresh machine: `make demo` and `make test`.
# Both create .venv when it is absent and install the package with Paddle's CPU build into it;
# `make test` adds the test tools (pytest, and torch + transformers as reference implementations).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev

.PHONY: demo test install clean

install: $(RUNTIME)

# Reinstall when the package's requirements change.
$(RUNTIME): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[cpu]'
	touch $(RUNTIME)

$(DEV): $(RUNTIME)
	$(PY) -m pip install --quiet -e '.[cpu,dev]'
	touch $(DEV)

# The whole pipeline on the embedded digits: the architecture contract's table, the dataset
# report, training, then evaluation of the best checkpoint on the test split.
demo: $(RUNTIME)
	$(PY) tools/summary.py
	rm -rf output/demo
	$(PY) tools/train.py -o output.run_name=demo
	$(PY) tools/infer.py --weights output/demo/checkpoints/best.pdparams --eval

test: $(DEV)
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
