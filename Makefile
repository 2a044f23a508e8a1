# Two commands from a fresh machine: `make demo` and `make test`.
# Both create .venv when it is absent and install the package with Paddle's CPU build into it,
# unless .venv already holds Paddle's GPU build (paddlepaddle-gpu, installed there first), which
# is kept; `make test` adds the ONNX and OpenVINO paths (paddle2onnx, onnxruntime, openvino,
# nncf) and the test tools (pytest, torch + transformers as reference implementations,
# Playwright) and Debian's chromium for the web app's browser test.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
# the `cpu` extra brings paddlepaddle; none where .venv has a Paddle built with CUDA, which the
# CPU wheel would overwrite (both install the `paddle` module)
PADDLE_EXTRA = $(shell $(PY) -c "import paddle, sys; sys.exit(not paddle.is_compiled_with_cuda())" \
	>/dev/null 2>&1 || echo cpu)
comma := ,
space := $(subst ,, )
# the pip argument for the package with the extras $(1): '.[a,b]', or '.' with none
package = '.$(if $(strip $(1)),[$(subst $(space),$(comma),$(strip $(1)))])'

.PHONY: demo test bench app install clean

install: $(RUNTIME)

# Reinstall when the package's requirements change; build vit's fused CPU kernels ahead (once
# per machine, 10-30 s), so that the demo's first forward pass does not wait for them.
$(RUNTIME): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e $(call package,$(PADDLE_EXTRA))
	$(PY) -m vit.kernels >/dev/null || echo "continuing with Paddle's own, slower CPU kernels"
	touch $(RUNTIME)

$(DEV): $(RUNTIME)
	$(PY) -m pip install --quiet -e $(call package,$(PADDLE_EXTRA) openvino dev)
	command -v chromium >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium could not be installed (apt-get needs root): the browser test will skip"
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

# Every way of running ViT-B/16@384 here, training images/s of the default model, the
# matrix-product ceiling, and PyTorch's time for the same architectures (docs/performance.md).
bench: $(DEV)
	$(PY) tools/benchmark.py -m ViT_base_patch16_384

# The four-tab web app on http://127.0.0.1:7860 (tools/app.py --help for host and port).
app: $(RUNTIME)
	$(PY) tools/app.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
