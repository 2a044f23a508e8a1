"""OpenVINO: the exported model as OpenVINO IR (`model.xml` + `model.bin`), run by OpenVINO's
CPU plugin, the fastest CPU runtime on Intel machines (PaddleX's and FastDeploy's CPU backend),
optionally quantised to int8 by NNCF (`model.int8.xml`), OpenVINO's own post-training
quantiser.

The IR is converted from `model.onnx` (onnx_export.py), not from Paddle's graph: OpenVINO's
Paddle frontend reads the legacy `.pdmodel`, not the `model.json` Paddle 3 writes. Like the ONNX
export, the conversion checks itself against the eager model (`TOLERANCE` of the largest logit)
or leaves no IR behind, and the int8 model records its top-1 agreement with the float32 one.
Compiled models are kept in OpenVINO's model cache (`cache_home()/openvino`), so a second
process starts without compiling again. No telemetry leaves the machine (`quiet_telemetry`).
The packages are the `openvino` extra (`pip install -e '.[cpu,openvino]'`).
"""

import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from .. import cpu
from ..errors import CheckpointError, VitError, param
from ..files import cache_home
from .inference import logit_agreement
from .onnx_export import TOLERANCE, logit_difference, quoting_failure

log = logging.getLogger(__name__)

IR_FILE = "model.xml"  # beside it, model.bin: the weights
INT8_FILE = "model.int8.xml"
INSTALL = "pip install -e '.[cpu,openvino]'"
# OpenVINO's precision hint for each precision the project names (int8 is a quantised IR)
HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
_REPORT = "report the Paddle, paddle2onnx and OpenVINO versions"
TELEMETRY_PACKAGE = "openvino_telemetry"


def quiet_telemetry():
    """Keep OpenVINO's and NNCF's usage statistics on this machine. Their converter and
    quantiser send events to Google Analytics unless the user declined (no consent file counts
    as consent), and offline a send holds the process for seconds at exit. Both fall back to
    their own no-op stand-ins when the telemetry package cannot be imported, so this process
    is kept from importing it, before the first import of either; nothing on disk or in the
    environment changes. A process that imported the package itself keeps it."""
    sys.modules.setdefault(TELEMETRY_PACKAGE, None)


def require_openvino():
    """OpenVINO, or one line naming the fix (the export also needs the ONNX converter its IR
    is made from: `export.check_export` asks for both)."""
    quiet_telemetry()
    try:
        import openvino
    except ImportError:
        raise VitError("the OpenVINO path needs openvino (it is not installed)", INSTALL) \
            from None
    return openvino


def require_nncf():
    """NNCF, OpenVINO's quantiser, or one line naming the fix."""
    quiet_telemetry()
    try:
        import nncf
    except ImportError:
        raise VitError("int8 on OpenVINO needs nncf (it is not installed)", INSTALL) from None
    return nncf


def native_bf16_in_openvino(core) -> bool:
    """Whether OpenVINO's CPU plugin computes bfloat16 natively here (AVX512-BF16 or AMX)."""
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenvinoPredictor:
    """An IR run by OpenVINO's CPU plugin.

    Args:
        path: the `.xml` file.
        num_threads: inference threads (0: those of Paddle's math, `cpu.math_threads`).
        precision: `fp32`, `bf16` (OpenVINO's inference-precision hint; float32 where the CPU
            has no native bfloat16, which is logged) or `int8` (for the quantised IR).
    """

    def __init__(self, path, num_threads: int = 0, precision: str = "fp32"):
        openvino = require_openvino()
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path} is missing",
                                  f"export the model with {param('fmt', 'openvino')}")
        core = openvino.Core()
        core.set_property({"CACHE_DIR": str(cache_home() / "openvino")})
        if precision == "bf16" and not native_bf16_in_openvino(core):
            log.warning("this CPU has no native bfloat16 (AVX512-BF16 or AMX): OpenVINO runs "
                        "the model in float32")
            precision = "fp32"
        settings = {"INFERENCE_NUM_THREADS": num_threads or cpu.math_threads(),
                    "INFERENCE_PRECISION_HINT": HINTS[precision],
                    "PERFORMANCE_HINT": "LATENCY"}
        try:
            self.compiled = core.compile_model(str(path), "CPU", settings)
        except RuntimeError as error:
            raise CheckpointError(f"OpenVINO cannot load {path} ({str(error).splitlines()[0]})",
                                  f"export the model again with {param('fmt', 'openvino')}") \
                from None
        self.request = self.compiled.create_infer_request()
        self.precision = precision

    def logits(self, images) -> np.ndarray:
        """Outputs [B, K] for a preprocessed batch [B, C, H, W] (array or tensor)."""
        images = np.ascontiguousarray(np.asarray(images.numpy() if hasattr(images, "numpy")
                                                 else images, dtype=np.float32))
        return np.array(self.request.infer({0: images})[0])


def export_openvino(folder: Path, onnx_file: Path, reference, input_shape) -> dict:
    """Convert `onnx_file` into the IR `folder/model.xml` and check it against `reference`
    (the eager model's logits) on seeded random images of `input_shape` (C, H, W), at batch 1
    and 3.

    Returns:
        what `inference.yml` records under `openvino`.

    Raises:
        CheckpointError: the conversion failed, or OpenVINO disagrees beyond `TOLERANCE` (then
            no IR is kept).
    """
    openvino = require_openvino()
    target = folder / IR_FILE
    with quoting_failure(f"OpenVINO could not convert {onnx_file}", _REPORT):
        model = openvino.convert_model(str(onnx_file))
    _save_ir(openvino, model, target, f"save the IR of {onnx_file}")
    worst, scale = logit_difference(OpenvinoPredictor(target), reference, input_shape)
    if worst > TOLERANCE * max(1.0, scale):
        for path in (target, target.with_suffix(".bin")):
            path.unlink(missing_ok=True)
        raise CheckpointError(f"OpenVINO's logits differ from Paddle's by {worst:.2e} (more "
                              f"than {TOLERANCE:g} of the largest, {scale:.3g}); the IR was not "
                              "kept", _REPORT)
    return {"file": IR_FILE, "converted_from": onnx_file.name, "max_abs_logit_difference": worst,
            "openvino": openvino.__version__}


def quantize_openvino(folder: Path, calibration: np.ndarray, check: np.ndarray,
                      multilabel: bool = False, thresholds=()) -> dict:
    """Post-training int8 quantisation of `folder/model.xml` into `model.int8.xml` by NNCF with
    its transformer preset (SmoothQuant, and a scheme for attention blocks that quantises
    fewer operations than the default); activation ranges are calibrated on `calibration`
    [N, C, H, W]. Checked against the float32 IR on `check`: the share of images whose top-1
    class agrees (`multilabel`: of the per-label decisions at `thresholds`)
    and the largest logit difference.

    Returns:
        what `inference.yml` records under `openvino.int8`.
    """
    openvino, nncf = require_openvino(), require_nncf()
    source = folder / IR_FILE
    dataset = nncf.Dataset([calibration[i:i + 1] for i in range(len(calibration))])
    with quoting_failure(f"NNCF could not quantise {source}",  # it draws progress bars
                         f"export with {param('precision', 'fp32')}; model.xml is kept"):
        quantised = nncf.quantize(openvino.Core().read_model(str(source)), dataset,
                                  model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(calibration))
    _save_ir(openvino, quantised, folder / INT8_FILE, f"save the int8 model of {source}")
    expected = OpenvinoPredictor(source).logits(check)
    low = OpenvinoPredictor(folder / INT8_FILE, precision="int8").logits(check)
    return {"file": INT8_FILE, "format": "NNCF post-training quantisation, transformer preset",
            "calibration_images": len(calibration), "checked_images": len(check),
            "nncf": nncf.__version__, **logit_agreement(low, expected, multilabel, thresholds)}


def _save_ir(openvino, model, target: Path, what: str):
    """`model` as `target` (.xml) and its .bin, both written atomically; float32 weights (the
    precision is chosen when the model runs)."""
    with tempfile.TemporaryDirectory(prefix="vit-openvino-", dir=target.parent) as scratch:
        temporary = Path(scratch) / target.name
        try:
            openvino.save_model(model, str(temporary), compress_to_fp16=False)
        except Exception as error:  # the converter raises anything; quote it
            raise CheckpointError(f"OpenVINO could not {what} ({error})", _REPORT) from None
        os.replace(temporary.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(temporary, target)
