"""Vision Transformer models: the layers, the model, the registry and size measures."""

from .complexity import (FlopCount, count_flops, count_parameters, count_parameters_by_name,
                         summarize, summary_text, table_diff)
from .layers import Attention, Block, DropPath, Mlp, PatchEmbed
from .variants import VARIANTS, create_model, list_models, model_args
from .vision_transformer import VisionTransformer

__all__ = [
    "Attention", "Block", "DropPath", "FlopCount", "Mlp", "PatchEmbed", "VARIANTS",
    "VisionTransformer", "count_flops", "count_parameters", "count_parameters_by_name",
    "create_model", "list_models", "model_args", "summarize", "summary_text", "table_diff",
]
