"""Paddle Inference running an exported static graph, and the precisions the deployed model
can run at (Paddle Inference's, and int8 on ONNX Runtime: onnx_export.py)."""

import numpy as np
import paddle

from .. import cpu
from ..errors import ConfigError, param
from .runtime import gpu_available

PRECISIONS = ("fp32", "bf16", "fp16", "int8")  # int8: ONNX Runtime's static quantisation


def check_precision(precision: str):
    """Raises ConfigError for a precision name that is not one of `PRECISIONS`."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown {param('precision')} '{precision}'",
                          f"use one of {', '.join(PRECISIONS)}")


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), so oneDNN's bf16
    kernels are fast rather than emulated."""
    return bool(paddle.base.core.supports_bfloat16_fast_performance())


class PaddlePredictor:
    """A static graph run by Paddle Inference: oneDNN on CPU (fp32, or bf16 where the CPU has
    it natively), or the GPU (fp32, fp16, bf16).

    Args:
        graph, params: the files `paddle.jit.save` wrote.
        precision: one of `PRECISIONS`.
        num_threads: CPU math threads (0: those of Paddle's math, `cpu.math_threads`).

    Raises:
        ConfigError: a precision this machine cannot run.
    """

    def __init__(self, graph, params, precision: str = "fp32", num_threads: int = 0):
        import paddle.inference as inference

        check_precision(precision)
        settings = inference.Config(str(graph), str(params))
        settings.disable_glog_info()
        if precision == "int8":
            raise ConfigError("int8 runs on ONNX Runtime or OpenVINO here, not Paddle Inference",
                              f"run the int8 model the export made with "
                              f"{param('runtime', 'onnx')} or {param('runtime', 'openvino')}, "
                              f"or use {param('precision', 'fp32')}")
        if gpu_available():
            kinds = {"fp32": inference.PrecisionType.Float32, "fp16": inference.PrecisionType.Half,
                     "bf16": inference.PrecisionType.Bfloat16}
            settings.enable_use_gpu(256, 0, kinds[precision])
        else:
            if precision == "fp16":
                raise ConfigError(f"{param('precision', 'fp16')} needs a GPU", "use fp32 (or bf16 on a CPU "
                                  "with native bfloat16)")
            if precision == "bf16" and not native_bf16():
                raise ConfigError(f"{param('precision', 'bf16')} needs a CPU with native bfloat16 "
                                  "(AVX512-BF16 or AMX); this one has none",
                                  f"use {param('precision', 'fp32')}")
            settings.disable_gpu()
            settings.enable_mkldnn()  # oneDNN: the fast CPU path
            if precision == "bf16":
                settings.enable_mkldnn_bfloat16()
            settings.set_cpu_math_library_num_threads(num_threads or cpu.math_threads())
        self.precision = precision
        self.predictor = inference.create_predictor(settings)
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def logits(self, images) -> np.ndarray:
        """Outputs [B, K] for a preprocessed batch [B, C, H, W] (array or tensor)."""
        images = np.ascontiguousarray(np.asarray(images.numpy() if hasattr(images, "numpy")
                                                 else images, dtype=np.float32))
        self.input.reshape(list(images.shape))
        self.input.copy_from_cpu(images)
        self.predictor.run()
        cpu.restore_runtime_threads()
        return self.output.copy_to_cpu()
