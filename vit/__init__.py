"""vit-paddle: the Vision Transformer of Dosovitskiy et al. (ICLR 2021) in PaddlePaddle.

The public API: `create_model` / `list_models` (the registry), `list_pretrained` (published
weights, `create_model(name, pretrained=True)`), `load_config` (YAML + overrides),
`configure_cpu` (the fast CPU settings, for a notebook or script: the tools take them
themselves), and, in `vit.engine`, `train`, `load_for_inference`, `predict_paths`,
`evaluate_model`.
"""

__version__ = "0.1.0"

from . import cpu as _cpu

# Before Paddle loads: the variables it reads once, where the user has not set them
# (vit/cpu.py); importing vit changes nothing else in the process.
_cpu.apply_environment()

with _cpu.quiet_paddle_import():  # the filter lasts for Paddle's own import only
    import paddle  # noqa: E402, F401

from .config import load_config  # noqa: E402
from .errors import CheckpointError, ConfigError, DataError, ModelError, VitError  # noqa: E402
from .models import (VisionTransformer, count_flops, count_parameters, create_model,  # noqa: E402
                     list_models, list_pretrained, summarize)

configure_cpu = _cpu.configure

__all__ = [
    "CheckpointError", "ConfigError", "DataError", "ModelError", "VisionTransformer", "VitError",
    "__version__", "configure_cpu", "count_flops", "count_parameters", "create_model",
    "list_models", "list_pretrained", "load_config", "summarize",
]
