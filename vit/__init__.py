"""vit-paddle: the Vision Transformer of Dosovitskiy et al. (ICLR 2021) in PaddlePaddle.

The public API: `create_model` / `list_models` (the registry), `list_pretrained` (published
weights, `create_model(name, pretrained=True)`), `load_config` (YAML + overrides),
and, in `vit.engine`, `train`, `load_for_inference`, `predict_paths`, `evaluate_model`.
"""

__version__ = "0.1.0"

import warnings

from . import cpu as _cpu

# Before Paddle loads: its MKL and kernel choices are read once (docs/performance.md).
_cpu.apply_environment()
# Paddle warns on import that ccache is missing; it only matters to people compiling C++ ops.
warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)

from .config import load_config  # noqa: E402
from .errors import CheckpointError, ConfigError, DataError, ModelError, VitError  # noqa: E402
from .models import (VisionTransformer, count_flops, count_parameters, create_model,  # noqa: E402
                     list_models, list_pretrained, summarize)

_cpu.apply_runtime()  # Paddle pins its math to one thread on import

__all__ = [
    "CheckpointError", "ConfigError", "DataError", "ModelError", "VisionTransformer", "VitError",
    "__version__", "count_flops", "count_parameters", "create_model", "list_models",
    "list_pretrained", "load_config", "summarize",
]
