"""vit-paddle: the Vision Transformer of Dosovitskiy et al. (ICLR 2021) in PaddlePaddle."""

__version__ = "0.1.0"

import warnings

# Paddle warns on import that ccache is missing; it only matters to people compiling C++ ops.
warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)

from .errors import CheckpointError, ConfigError, DataError, ModelError, VitError
from .models import (VisionTransformer, count_flops, count_parameters, create_model, list_models,
                     summarize)

__all__ = [
    "CheckpointError", "ConfigError", "DataError", "ModelError", "VisionTransformer", "VitError",
    "__version__", "count_flops", "count_parameters", "create_model", "list_models", "summarize",
]
