"""ONNX: the exported static graph converted by `paddle2onnx` into `model.onnx`, run by ONNX
Runtime (the path to TensorRT, OpenVINO, browsers and most servers outside Paddle's own), and
optionally quantised to int8 (`model.int8.onnx`, static, calibrated on training images).

The conversion checks itself: ONNX Runtime's logits of a sample batch must equal the eager
model's within `TOLERANCE` (relative to the largest logit), or no `model.onnx` is left behind;
the int8 model records its top-1 agreement with the float32 one on held-out images.
Both packages are the `onnx` extra (`pip install -e '.[cpu,onnx]'`).
"""

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from .. import cpu
from ..errors import CheckpointError, VitError, param
from .inference import logit_agreement

OPSET = 17  # LayerNormalization is one ONNX op from opset 17 on
TOLERANCE = 1e-4  # max |logit difference| / max(1, max |logit|) accepted at export
ONNX_FILE = "model.onnx"


def require_onnx():
    """The two packages of the ONNX path, or one line naming the fix."""
    try:
        import onnxruntime
        import paddle2onnx
    except ImportError as error:
        raise VitError(f"the ONNX path needs paddle2onnx and onnxruntime ({error.name} is not "
                       "installed)", "pip install -e '.[cpu,onnx]'") from None
    return paddle2onnx, onnxruntime


@contextlib.contextmanager
def captured_output():
    """Send what C++ and Python print to the two file descriptors into a temporary file
    (paddle2onnx and Polygraphy log every pass); yield the file, to quote on failure."""
    with tempfile.TemporaryFile(mode="w+") as sink:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield sink
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def convert_to_onnx(graph: Path, params: Path, output: Path) -> Path:
    """`paddle2onnx` of the static graph into `output` (written atomically: a failed
    conversion leaves nothing)."""
    paddle2onnx, _ = require_onnx()
    temporary = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    try:
        with captured_output() as log:
            try:
                paddle2onnx.export(str(graph), str(params), str(temporary),
                                   opset_version=OPSET, enable_onnx_checker=True)
                failure = None
            except Exception as error:  # the converter raises anything; quote it
                failure = error
            log.seek(0)
            lines = [line for line in log.read().splitlines() if line.strip()]
        if failure is not None or not temporary.is_file():
            detail = str(failure) if failure is not None else (lines[-1] if lines else "")
            raise CheckpointError(f"paddle2onnx could not convert {graph} ({detail})",
                                  "report the Paddle and paddle2onnx versions; the Paddle "
                                  "Inference export in the same folder still works")
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
    return output


class OnnxPredictor:
    """`model.onnx` run by ONNX Runtime on the CPU.

    Args:
        path: the `.onnx` file.
        num_threads: threads of one operator (0: those of Paddle's math, `cpu.math_threads`).
        precision: what the file computes in (`fp32`, or `int8` for the quantised one).
    """

    def __init__(self, path, num_threads: int = 0, precision: str = "fp32"):
        _, onnxruntime = require_onnx()
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path} is missing",
                                  f"export the model with {param('fmt', 'onnx')}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads or cpu.math_threads()
        options.log_severity_level = 3  # errors only
        try:
            self.session = onnxruntime.InferenceSession(str(path), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as error:
            raise CheckpointError(f"ONNX Runtime cannot load {path} ({error})",
                                  f"export the model again with {param('fmt', 'onnx')}") from None
        self.input_name = self.session.get_inputs()[0].name
        self.precision = precision

    def logits(self, images) -> np.ndarray:
        """Outputs [B, K] for a preprocessed batch [B, C, H, W] (array or tensor)."""
        images = np.ascontiguousarray(np.asarray(images.numpy() if hasattr(images, "numpy")
                                                 else images, dtype=np.float32))
        return self.session.run(None, {self.input_name: images})[0]


def logit_difference(predictor, reference, input_shape):
    """How far a converted model's logits (`predictor`) are from `reference`'s (a logits
    function: the eager model) on seeded random images of `input_shape` (C, H, W), at batch 1
    and 3 (the batch axis is dynamic): (max |logit difference| of the worse batch, the largest
    |reference logit| of that batch)."""
    sample = np.random.default_rng(0).standard_normal((3, *input_shape)).astype(np.float32)

    def on(batch):
        expected = np.asarray(reference(batch), dtype=np.float64)
        got = np.asarray(predictor.logits(batch), dtype=np.float64)
        return float(np.abs(got - expected).max()), float(np.abs(expected).max())
    return max(on(batch) for batch in (sample[:1], sample))


@contextlib.contextmanager
def quoting_failure(what: str, hint: str):
    """Run a converter or quantiser with what it prints captured; anything it raises becomes
    one CheckpointError, "`what` (its message)", raised once the output is restored."""
    failure = None
    with captured_output():
        try:
            yield
        except Exception as error:  # the converters and quantisers raise anything; quote it
            failure = error
    if failure is not None:
        raise CheckpointError(f"{what} ({failure})", hint) from None


def export_onnx(folder: Path, graph: Path, reference, input_shape) -> dict:
    """Convert the static graph in `folder` into `model.onnx` and check it against
    `reference` (the eager model's logits) on seeded random images of `input_shape`
    (C, H, W), at batch 1 and 3 (the batch axis is dynamic).

    Returns:
        what `inference.yml` records under `onnx`.

    Raises:
        CheckpointError: the conversion failed, or ONNX Runtime disagrees beyond `TOLERANCE`
            (then `model.onnx` is removed).
    """
    paddle2onnx, onnxruntime = require_onnx()
    path = convert_to_onnx(graph, folder / "model.pdiparams", folder / ONNX_FILE)
    worst, scale = logit_difference(OnnxPredictor(path), reference, input_shape)
    if worst > TOLERANCE * max(1.0, scale):
        path.unlink()
        raise CheckpointError(f"ONNX Runtime's logits differ from Paddle's by {worst:.2e} "
                              f"(more than {TOLERANCE:g} of the largest, {scale:.3g}); "
                              "model.onnx was not kept",
                              "report the Paddle and paddle2onnx versions")
    return {"file": ONNX_FILE, "opset": OPSET, "max_abs_logit_difference": worst,
            "paddle2onnx": paddle2onnx.__version__, "onnxruntime": onnxruntime.__version__}


INT8_FILE = "model.int8.onnx"
QUANTISED_PRODUCTS = ("MatMul", "Gemm", "Conv")


def products_of_activations(path: Path) -> list:
    """Names of the MatMul nodes in the ONNX graph at `path` whose inputs are both computed
    (no weight among them): in a ViT, attention's q kᵀ and P v."""
    import onnx

    graph = onnx.load(str(path)).graph
    constant = {tensor.name for tensor in graph.initializer}
    constant |= {name for node in graph.node if node.op_type == "Constant" for name in node.output}
    return [node.name for node in graph.node
            if node.op_type == "MatMul" and not constant.intersection(node.input)]


def quantize_onnx(folder: Path, calibration: np.ndarray, check: np.ndarray,
                  multilabel: bool = False, thresholds=()) -> dict:
    """Static int8 quantisation of `folder/model.onnx` into `model.int8.onnx`: ONNX Runtime's
    QDQ format, signed 8-bit activations and per-channel signed 8-bit weights (S8S8, ONNX
    Runtime's recommended CPU setting), every product with a weight (MatMul, Gemm, Conv);
    activation ranges are calibrated (min/max) on `calibration` [N, C, H, W]. The products
    give float32, not int8 (ONNX Runtime then runs MatMulIntegerToFloat, with no quantise and
    dequantise pass over each output), and attention's two products of activations (q kᵀ and
    P v) stay float32: quantising either made the model slower and less exact. Checked against
    the float32 model on `check`: the share of images whose top-1 class agrees (`multilabel`:
    of the per-label decisions at `thresholds`) and the largest logit
    difference.

    Returns:
        what `inference.yml` records under `onnx.int8`.
    """
    source, target = folder / ONNX_FILE, folder / INT8_FILE
    full = OnnxPredictor(source)
    _quantize_static(source, target, _calibration_reader(calibration, full.input_name))
    expected, low = full.logits(check), OnnxPredictor(target).logits(check)
    return {"file": INT8_FILE,
            "format": "QDQ, S8S8, per-channel weights; float32 outputs; attention in float32",
            "calibration_images": len(calibration), "checked_images": len(check),
            **logit_agreement(low, expected, multilabel, thresholds)}


def _calibration_reader(images: np.ndarray, input_name: str):
    """ONNX Runtime's calibration input: `images` [N, C, H, W], one at a time."""
    from onnxruntime.quantization import CalibrationDataReader

    class Images(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(images[i:i + 1] for i in range(len(images)))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch}
    return Images()


def _quantize_static(source: Path, target: Path, calibration) -> None:
    """ONNX Runtime's static quantisation of `source` into `target` with the settings
    `quantize_onnx` gives (written atomically; the quantiser's own output captured).

    Raises:
        CheckpointError: the quantiser failed, quoting it.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="vit-int8-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        temporary = Path(scratch) / INT8_FILE
        with quoting_failure(f"ONNX Runtime could not quantise {source}",
                             f"export with {param('precision', 'fp32')}; model.onnx is kept"):
            # the graph's batch axis is symbolic, which the symbolic shape pass cannot size
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantize_static(str(prepared), str(temporary), calibration,
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=list(QUANTISED_PRODUCTS),
                            nodes_to_exclude=products_of_activations(prepared),
                            extra_options={"OpTypesToExcludeOutputQuantization":
                                           list(QUANTISED_PRODUCTS)})
        os.replace(temporary, target)
