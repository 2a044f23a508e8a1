"""From the config to ready datasets: acquire, describe, then attach the preprocessing."""

from dataclasses import dataclass
from typing import List

from ..config import Config
from ..progress import Progress
from .datasets import DataBundle, ImageSet
from .preprocessing import Preprocessing
from .sources import build_datasets
from .stats import compute_dataset_stats, mean_std_from_stats
from .transforms import build_transforms


@dataclass
class PreparedData:
    """The splits with their pipelines, and everything known about them."""

    bundle: DataBundle
    stats: dict
    preprocessing: Preprocessing  # what the checkpoint records (image size, mean/std, classes)
    train: ImageSet  # training pipeline (augmentation)
    val: ImageSet  # evaluation pipeline
    test: ImageSet  # evaluation pipeline

    @property
    def class_names(self) -> List[str]:
        return self.bundle.class_names

    @property
    def num_classes(self) -> int:
        return self.bundle.num_classes

    def split(self, name: str) -> ImageSet:
        return {"train": self.train, "val": self.val, "test": self.test}[name]


def prepare_data(config: Config, image_size: int, progress: Progress = None) -> PreparedData:
    """Acquire the configured data, compute its statistics and attach the pipelines.

    Args:
        config: the whole config (data and augment sections are used).
        image_size: side of the model's square input.
        progress: called as progress(stage, done, total) during long work.
    """
    bundle = build_datasets(config.data, progress)
    stats = compute_dataset_stats(bundle, config.data.stats_max_images, config.data.split_seed,
                                  progress)
    measured = mean_std_from_stats(stats)
    augment = config.augment
    mean = measured["mean"] if augment.mean == "dataset" else list(augment.mean)
    std = measured["std"] if augment.std == "dataset" else list(augment.std)
    preprocessing = Preprocessing(image_size, tuple(mean), tuple(std), augment.interpolation,
                                  augment.crop_pct, tuple(bundle.class_names), config.data.task)
    stats["preprocessing"] = {"image_size": image_size, "mean": mean, "std": std}
    train_tf = build_transforms(augment, image_size, True, mean, std)
    eval_tf = preprocessing.eval_transform()
    splits = bundle.splits
    return PreparedData(bundle, stats, preprocessing,
                        train=splits["train"].with_transform(train_tf),
                        val=splits["val"].with_transform(eval_tf),
                        test=splits["test"].with_transform(eval_tf))
