"""Data: acquisition (the source registry, downloads), reading images, splits, preprocessing,
loading in batches, and statistics. Nothing here knows about models or training."""

from .builder import PreparedData, prepare_data
from .datasets import (ArrayImageSet, DataBundle, FileImageSet, ImageSet, Skipped,
                       collate_skipping)
from .images import UnusableImage, load_image, to_rgb
from .loaders import build_loader
from .preprocessing import Preprocessing
from .sources import SOURCES, Source, build_datasets, get_source, source_names
from .stats import compute_dataset_stats, format_stats, save_stats
from .transforms import build_eval_transform, build_transforms

__all__ = [
    "ArrayImageSet", "DataBundle", "FileImageSet", "ImageSet", "PreparedData", "Preprocessing",
    "SOURCES", "Skipped", "Source", "UnusableImage", "build_datasets", "build_eval_transform",
    "build_loader", "build_transforms", "collate_skipping", "compute_dataset_stats",
    "format_stats", "get_source", "load_image", "prepare_data", "save_stats", "source_names",
    "to_rgb",
]
