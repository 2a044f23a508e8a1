"""`create_model`: a registered model by name, initialised as the paper does or from published
weights (timm's `create_model(name, pretrained=True)`)."""

from typing import Union

from .pretrained import build_pretrained
from .variants import build_model


def create_model(name: str, pretrained: Union[bool, str] = False, **overrides):
    """Build the registered model `name`, e.g. `create_model("ViT_base_patch16_384")`.

    Args:
        name: a name from `list_models()` (or a baseline such as "ResNet20").
        pretrained: False (initialised as the paper does); True, a tag or `Name.tag` from
            `list_pretrained()` (downloaded and cached); or a weights file, folder or URL.
            Without `num_classes` the weights' classifier is kept; another `num_classes` gets
            a zero head, an `img_size` other than theirs resampled position embeddings.
        **overrides: constructor arguments that replace the registered ones, e.g.
            `num_classes=10` or `drop_path_rate=0.1`.

    Raises:
        ModelError: for an unknown name (listing close matches), an unknown argument, or
            weights the registry does not have.
        CheckpointError: weights that cannot be fetched or do not fit.
    """
    if not pretrained:
        return build_model(name, **overrides)
    return build_pretrained(name, pretrained, **overrides).model
