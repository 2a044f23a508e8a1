"""From the config to the model's arguments: the configured constructor overrides, the input
size, and the preprocessing that published weights bring."""

import logging
from typing import Optional

from ..config import Config, config_from_dict
from ..errors import ConfigError, param
from ..models import REGULARISATION_ARGS, architecture_differences, is_vit, model_args
from ..models.layers import to_2tuple
from ..models.pretrained_registry import find_weights

log = logging.getLogger(__name__)

# augment key -> the registry entry's field: how the weights' own images were prepared
_WEIGHTS_PREPROCESSING = {"augment.mean": "mean", "augment.std": "std",
                          "augment.interpolation": "interpolation", "augment.crop_pct": "crop_pct"}


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


def _same_architecture(weights_model: str, model: str) -> bool:
    """Whether weights of `weights_model` fit `model` but for the input size (the paper's
    224 -> 384 fine-tuning, which resamples the position embeddings)."""
    return not architecture_differences(model_args(weights_model), model_args(model),
                                        ignore=("img_size",))


def with_weights_preprocessing(config: Config) -> Config:
    """`config` with the preprocessing of the published weights `model.pretrained` names
    (mean, std, interpolation, crop) wherever the config file and overrides leave it to the
    default; unchanged for a user's own weights file, or when resuming.

    Raises:
        ConfigError: the named weights belong to another model than `model.name`.
    """
    spec = config.model.pretrained
    entry = find_weights(spec, config.model.name) if spec and not config.train.resume else None
    if entry is None:
        return config
    if not _same_architecture(entry.model, config.model.name):
        raise ConfigError(f"model.pretrained {spec} are weights of {entry.model}, but "
                          f"model.name is {config.model.name}",
                          f"set {param('model.name', entry.model)}, or "
                          f"{param('model.pretrained')} to weights of {config.model.name}")
    taken = [f"{key}={list(value) if isinstance(value, tuple) else value}"
             for key, value in ((k, getattr(entry, f)) for k, f in _WEIGHTS_PREPROCESSING.items())
             if key not in config.given]
    if not taken:
        return config
    log.info("preprocessing of %s: %s", entry.name, ", ".join(taken))
    return config_from_dict(config.to_dict(), config.name, f"the weights {entry.name}", taken)
