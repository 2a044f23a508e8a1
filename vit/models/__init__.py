"""Vision Transformer models: the layers, the model, the registry and size measures (and one
CNN baseline for the data-scaling experiment)."""

from .complexity import (FlopCount, count_flops, count_parameters, count_parameters_by_name,
                         input_size, summarize, summary_text, table_diff)
from .layers import Attention, Block, DropPath, Mlp, PatchEmbed
from .factory import create_model
from .variants import (BASELINES, REGULARISATION_ARGS, VARIANTS, architecture_differences,
                       build_model, build_recorded_model, is_vit, list_models, model_args)
from .pretrained_registry import PRETRAINED, list_pretrained
from .vision_transformer import VisionTransformer

__all__ = [
    "Attention", "BASELINES", "Block", "DropPath", "FlopCount", "Mlp", "PRETRAINED", "PatchEmbed",
    "REGULARISATION_ARGS", "VARIANTS", "VisionTransformer", "architecture_differences",
    "build_model", "build_recorded_model",
    "count_flops", "count_parameters", "count_parameters_by_name", "create_model", "input_size",
    "is_vit", "list_models", "list_pretrained", "model_args", "summarize", "summary_text",
    "table_diff",
]
