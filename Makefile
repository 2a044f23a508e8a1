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

demo: $(INSTALLED)
	$(PY) tools/summary.py
	$(PY) -c "import paddle, vit; m = vit.create_model('ViT_base_patch16_384'); m.eval(); print('forward pass: logits', m(paddle.rand([1, 3, 384, 384])).shape)"

test: $(INSTALLED)
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
