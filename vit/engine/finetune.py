"""Fine-tuning on a frozen backbone (the paper's linear evaluation; what a CPU can afford on
ViT-B): only the head, and the pre-logits layer where there is one, learn.

The backbone then runs in eval mode without gradients, so its output for an image depends on the
image alone. When nothing random touches the images either (no crop, flip, shift or RandAugment,
no Mixup or CutMix), every epoch would compute the same features again: they are computed once
(`feature_set`) and the head trains on them, with the same loop, batches and numbers.
"""

import logging

import numpy as np
import paddle

from ..config import Config
from ..data.loaders import build_loader
from ..errors import ConfigError
from ..progress import Progress
from .evaluation import collect_outputs, model_logits

log = logging.getLogger(__name__)

LEARNING = ("head.", "pre_logits.")  # what learns on a frozen backbone


def freeze_backbone(model) -> int:
    """Stop the gradients of everything but the head and the pre-logits layer; return the
    number of parameters that still learn.

    Raises:
        ConfigError: the model is not a ViT (it has no backbone/head split to freeze at).
    """
    if not hasattr(model, "forward_features"):
        raise ConfigError(f"train.freeze=backbone needs a ViT, not {type(model).__name__}",
                          "set train.freeze=none")
    learning = 0
    for name, param in model.named_parameters():
        param.stop_gradient = not name.startswith(LEARNING)
        learning += 0 if param.stop_gradient else int(np.prod(param.shape))
    return learning


def needs_images_each_epoch(config: Config) -> bool:
    """Whether training draws something random from the images themselves, so features cannot
    be computed once."""
    augment = config.augment
    return bool(augment.random_resized_crop or augment.crop_padding or augment.hflip
                or augment.rand_augment_n or augment.mixup_alpha or augment.cutmix_alpha)


class HeadTraining(paddle.nn.Layer):
    """A ViT whose backbone does not learn: in training mode only the head (and pre-logits) are
    in training mode, and the backbone runs without gradients. Its input is images, or with
    `on_features` the backbone's features [B, D] (`feature_set`)."""

    def __init__(self, model, on_features: bool):
        super().__init__()
        self.model = model
        self.on_features = on_features

    def train(self):
        super().train()
        for name, layer in self.model.named_children():
            if not name.startswith(tuple(p.rstrip(".") for p in LEARNING)):
                layer.eval()
        return self

    def forward(self, x):
        if not self.on_features:
            with paddle.no_grad():
                x = self.model.forward_features(x)
        return self.model.forward_head(x)


class FeatureSet(paddle.io.Dataset):
    """A split's backbone features in place of its images, yielding what an ImageSet yields
    (feature vector, label, position), so the loaders and the loop take it as it is."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, class_names, positions=None):
        super().__init__()
        self.features = features
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = list(class_names)
        self.positions = positions  # each row's image in the split it was computed from

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        index = index[0] if isinstance(index, tuple) else index  # (index, seed) when training
        return self.features[index], self.labels[index], index  # a class, or 0/1 labels


def feature_set(model, dataset, batch_size: int, progress: Progress = None,
                stage: str = "computing features", forward=None) -> FeatureSet:
    """The backbone's features (`forward`, by default `model.forward_features`: the class
    token after the final norm) of the readable images of `dataset`, through its own
    transform (an unreadable image is left out, as a batch leaves it out; `positions` says
    which images are kept)."""
    outputs = collect_outputs(model_logits(model, forward or model.forward_features),
                              build_loader(dataset, batch_size, False), model.num_features,
                              progress, stage)
    return FeatureSet(outputs.values, outputs.labels, dataset.class_names, outputs.indices)
