"""From the config to the model's arguments: the configured constructor overrides and the input
size."""

from typing import Optional

from ..config import Config
from ..models import REGULARISATION_ARGS, is_vit, model_args
from ..models.layers import to_2tuple


def model_kwargs_from_config(config: Config, num_classes: Optional[int] = None) -> dict:
    """Constructor overrides for `config.model.name` from the config and the data's classes."""
    kwargs = {}
    if is_vit(config.model.name):  # a CNN baseline has no dropout or stochastic depth to set
        kwargs = {arg: getattr(config.model, arg) for arg in REGULARISATION_ARGS}
    if config.data.image_size:
        kwargs["img_size"] = config.data.image_size
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    model_args(config.model.name, **kwargs)  # fails early, naming an unknown model
    return kwargs


def resolve_image_size(config: Config) -> int:
    """Side of the model's square input: `data.image_size`, else the model's own size."""
    if config.data.image_size:
        return config.data.image_size
    height, width = to_2tuple(model_args(config.model.name)["img_size"])
    return height
