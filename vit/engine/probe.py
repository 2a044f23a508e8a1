"""Linear few-shot evaluation of frozen features, the measure of the paper's Figure 4: k images
per class of the training split, the model's features of them (the ViT's class token after the
final norm, the ResNet's pooled features), and a closed-form regularised least-squares map from
features to {-1, 1} targets (as the paper does), scored on the test split. Several draws of the
k images give a mean and a spread. It says how good a checkpoint's features are for a data set
without training anything.
"""

from typing import Dict, Sequence

import numpy as np

from ..config import DataConfig
from ..data.sources import build_datasets
from ..errors import ConfigError, param
from ..progress import Progress
from .finetune import feature_set

RIDGE = 1.0  # on standardised features; small data wants some shrinkage, the paper sweeps it


def least_squares_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                        test_y: np.ndarray, num_classes: int, ridge: float = RIDGE) -> float:
    """Test accuracy of the ridge-regression map from standardised features (plus a bias) to
    one-vs-rest {-1, 1} targets, fitted in closed form on the training features."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6

    def design(x):
        return np.hstack([(x - mean) / std, np.ones((len(x), 1))]).astype(np.float64)

    a = design(train_x)
    targets = -np.ones((len(train_y), num_classes))
    targets[np.arange(len(train_y)), train_y] = 1.0
    regulariser = ridge * np.eye(a.shape[1])
    regulariser[-1, -1] = 0.0  # the bias is not shrunk
    weights = np.linalg.solve(a.T @ a + regulariser, a.T @ targets)
    return float(((design(test_x) @ weights).argmax(1) == test_y).mean())


def mean_and_std(scores) -> Dict[str, float]:
    """The mean and the sample standard deviation (n - 1; 0 for a single score)."""
    return {"mean": float(np.mean(scores)),
            "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0}


def few_shot_accuracy(loaded, shots: Sequence[int] = (1, 5, 10, 25), draws: int = 5,
                      seed: int = 0, batch_size: int = 128,
                      progress: Progress = None) -> Dict[str, object]:
    """Linear k-shot accuracy of `loaded`'s frozen features on its config's data set.

    Returns:
        dict with `source`, `num_classes`, `train_images` (the training split the k images are
        drawn from), `test_images`, `ridge`, `draws`, `seed` and `shots`: per k, the accuracy
        of every draw, their mean and sample standard deviation.
    """
    return probe_features(loaded.model, loaded.preprocessing.eval_transform(),
                          loaded.config.data, shots, draws, seed, batch_size, progress)


def probe_features(model, transform, data_config: DataConfig,
                   shots: Sequence[int] = (1, 5, 10, 25), draws: int = 5, seed: int = 0,
                   batch_size: int = 128, progress: Progress = None) -> Dict[str, object]:
    """`few_shot_accuracy` of any model with features (trained or not), its input made by
    `transform`, on the data set of `data_config`."""
    if not hasattr(model, "forward_features"):
        raise ConfigError(f"{type(model).__name__} has no features to probe",
                          "probe a ViT or ResNet20 checkpoint")
    if data_config.task != "multiclass":  # k images per class has no meaning with label sets
        raise ConfigError(f"the few-shot probe scores one class per image, and this data set "
                          f"has {data_config.task} labels",
                          f"probe on a single-label data set ({param('data.task', 'multiclass')})")
    data = build_datasets(data_config, progress)
    smallest = int(np.bincount(data.splits["train"].labels, minlength=data.num_classes).min())
    for k in shots:  # before any image goes through the model
        if not 1 <= k <= smallest:
            raise ConfigError(f"{k}-shot needs {k} training images of every class",
                              f"the smallest class has {smallest}")
    train = feature_set(model, data.splits["train"].with_transform(transform),
                        batch_size, progress, "features of the training images")
    test = feature_set(model, data.splits["test"].with_transform(transform),
                       batch_size, progress, "features of the test images")
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(train.labels == c) for c in range(data.num_classes)]
    if min(map(len, by_class)) < max(shots):  # unreadable images were left out
        raise ConfigError(f"{max(shots)}-shot needs {max(shots)} readable training images of "
                          "every class", f"the smallest class has {min(map(len, by_class))}")
    results = {}
    for k in shots:
        scores = []
        for _ in range(draws):
            chosen = np.concatenate([rng.choice(members, k, replace=False)
                                     for members in by_class])
            scores.append(least_squares_probe(train.features[chosen], train.labels[chosen],
                                              test.features, test.labels, data.num_classes))
        results[str(k)] = {"accuracy": scores, **mean_and_std(scores)}
    return {"source": data_config.source, "num_classes": data.num_classes,
            "train_images": len(data.splits["train"]), "test_images": len(test),
            "ridge": RIDGE, "draws": draws, "seed": seed, "shots": results}
