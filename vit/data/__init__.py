"""Data: acquisition (sources, download), reading images, splits, preprocessing, statistics."""

from .builder import PreparedData, prepare_data
from .datasets import ArrayImageSet, FileImageSet, ImageSet, Skipped, collate_skipping
from .images import UnusableImage, load_image, to_rgb
from .sources import DataBundle, build_datasets
from .stats import compute_dataset_stats, format_stats, save_stats
from .transforms import build_transforms

__all__ = [
    "ArrayImageSet", "DataBundle", "FileImageSet", "ImageSet", "PreparedData", "Skipped",
    "UnusableImage", "build_datasets", "build_transforms", "collate_skipping",
    "compute_dataset_stats", "format_stats", "load_image", "prepare_data", "save_stats",
    "to_rgb",
]
