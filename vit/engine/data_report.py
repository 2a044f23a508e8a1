"""The dataset report of a run: stats.json, the table, and the data figures."""

import logging
from pathlib import Path
from typing import Dict

from ..data.builder import PreparedData
from ..data.samples import sample_grid, sample_indices
from ..data.sources import SPLITS
from ..data.stats import format_stats, save_stats
from ..viz import save_figure
from ..viz.data_figures import plot_class_histogram, plot_image_sizes, plot_samples
from .run_folder import RunFolder

log = logging.getLogger(__name__)

SAMPLES_PER_CLASS = 6


def write_data_report(data: PreparedData, run_dir, seed: int = 0) -> Dict[str, Path]:
    """Write `stats.json` and the data figures into `run_dir`; return their paths by name.

    Figures: `figures/data_class_histogram.png`, `figures/data_image_sizes.png`,
    `figures/data_samples.png` (raw) and `figures/data_samples_preprocessed.png` (the same
    images through the training pipeline, as the model sees them).
    """
    run_dir = Path(run_dir)
    figures = RunFolder(run_dir).figures
    figures.mkdir(parents=True, exist_ok=True)
    paths = {"stats": save_stats(data.stats, RunFolder(run_dir).stats_file)}
    paths["class_histogram"] = save_figure(plot_class_histogram(data.stats),
                                           figures / "data_class_histogram.png")
    sizes = {split: data.split(split).sizes_and_formats()[0] for split in SPLITS}
    paths["image_sizes"] = save_figure(plot_image_sizes(sizes, data.stats["source"]),
                                       figures / "data_image_sizes.png")
    chosen = sample_indices(data.train, SAMPLES_PER_CLASS, seed)
    paths["samples"] = save_figure(
        plot_samples(sample_grid(data.train, chosen), "Training images as stored"),
        figures / "data_samples.png")
    size, prep = data.preprocessing.image_size, data.preprocessing
    paths["samples_preprocessed"] = save_figure(
        plot_samples(sample_grid(data.train, chosen, data.train.transform, prep.mean, prep.std),
                     f"After the training pipeline ({size}x{size}, normalisation undone)"),
        figures / "data_samples_preprocessed.png")
    return paths


def log_data_report(data: PreparedData, run_dir, seed: int, run_log) -> Dict[str, Path]:
    """The report of a new run: the table in the log, the files, the figures in VisualDL."""
    log.info("%s\n", format_stats(data.stats))
    paths = write_data_report(data, run_dir, seed)
    for name, path in paths.items():
        if name != "stats":
            run_log.image(f"data/{name}", path)
    return paths


def describe_data(config, progress=None):
    """`tools/train.py --stats-only`: acquire the data, write the report into a new run folder.

    Returns:
        (run_dir, PreparedData, paths of the written files)
    """
    from ..data.builder import prepare_data
    from .builders import resolve_image_size

    data = prepare_data(config, resolve_image_size(config), progress)
    run_folder = RunFolder.for_config(config)
    run_folder.create(config)
    paths = write_data_report(data, run_folder.path, config.data.split_seed)
    return run_folder.path, data, paths
