"""Looking inside a ViT without changing it: attention maps recorded by hooks, attention
rollout, mean attention distance, position-embedding similarity and the patch filters'
principal components (the paper's Figures 6 and 7). NumPy in, NumPy out."""

from .attention import (HEAD_FUSIONS, AttentionRecorder, attention_rollout, class_token_map,
                        fuse_heads, mean_attention_distance, record_attention)
from .embeddings import as_rgb_tiles, filter_components, position_similarity

__all__ = [
    "AttentionRecorder", "HEAD_FUSIONS", "as_rgb_tiles", "attention_rollout", "class_token_map",
    "filter_components", "fuse_heads", "mean_attention_distance", "position_similarity",
    "record_attention",
]
