"""Dataset information: what is in each split, in numbers (stats.json) and a readable table.

`compute_dataset_stats` returns plain data: per split the image count and per-class counts, class
balance (rarest / most common class) and imbalance (its inverse), image sizes, channel mean and
std, file formats (on multi-label data also the mean labels per image); and the files that were
skipped with the reason. Figures are in `vit.viz.data_figures`.
"""

import json
from pathlib import Path
from typing import Dict

import numpy as np

from ..progress import Progress
from .datasets import ArrayImageSet, DataBundle, ImageSet
from .images import UnusableImage

# A training split whose largest class has this many times the images of its smallest gets a
# line in the report that points to the remedies (class weights, the balanced sampler).
IMBALANCE_WARNING = 3.0


def compute_dataset_stats(bundle: DataBundle, max_images: int = 5000, seed: int = 0,
                          progress: Progress = None) -> dict:
    """Describe every split of `bundle`.

    Args:
        bundle: the data set, from `build_datasets`.
        max_images: per split, at most this many images are decoded for channel statistics (a
            seeded sample); in-memory sources always use every image.
        seed: seed of that sample.
        progress: called as progress(stage, done, total).
    """
    splits = {split: _split_stats(bundle.class_names, dataset, max_images, seed, split,
                                  progress)
              for split, dataset in bundle.splits.items()}
    return {
        "source": bundle.source,
        "task": "multilabel" if bundle.splits["train"].multilabel else "multiclass",
        "num_classes": bundle.num_classes,
        "class_names": list(bundle.class_names),
        "total_images": int(sum(s["num_images"] for s in splits.values())),
        "splits": splits,
        "skipped": list(bundle.skipped),
        "empty_classes": list(bundle.empty_classes),
    }


def _split_stats(class_names, dataset: ImageSet, max_images: int, seed: int, split: str,
                 progress: Progress) -> dict:
    """The numbers of one split (per class: images, or on multi-label data images carrying the
    label)."""
    counts = dataset.class_counts()
    present = counts[counts > 0]
    sizes, formats = dataset.sizes_and_formats()
    mean, std, used = channel_statistics(dataset, max_images, seed, split, progress)
    info = {
        "num_images": int(len(dataset)),
        "per_class": {name: int(n) for name, n in zip(class_names, counts)},
        "class_balance": float(present.min() / present.max()) if len(present) else None,
        "imbalance": float(present.max() / present.min()) if len(present) else None,
        "classes_present": int(len(present)),
        "image_size": {axis: _min_median_max(sizes[:, column])
                       for column, axis in enumerate(("width", "height"))},
        "channel_mean": mean,
        "channel_std": std,
        "channel_stats_images": used,
        "formats": dict(sorted(formats.items())),
    }
    if dataset.multilabel:
        info["labels_per_image"] = (float(dataset.labels.sum(axis=1).mean()) if len(dataset)
                                    else None)
    return info


def _min_median_max(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {"min": None, "median": None, "max": None}
    return {"min": int(values.min()), "median": float(np.median(values)), "max": int(values.max())}


def _array_statistics(items: np.ndarray):
    """(mean [3], std [3]) of uint8 images [N, H, W] or [N, H, W, 3], from exact integer sums
    taken a chunk at a time: a million images as float64 would be 6 GB."""
    total, squares = np.zeros(3, np.int64), np.zeros(3, np.int64)
    for start in range(0, len(items), 10_000):
        chunk = items[start:start + 10_000].astype(np.int64)
        chunk = chunk.reshape(-1, 1) if chunk.ndim == 3 else chunk.reshape(-1, 3)
        total += chunk.sum(0)  # grayscale: the same value in R, G and B
        squares += (chunk * chunk).sum(0)
    count = items[..., 0].size if items.ndim == 4 else items.size
    mean = total / count / 255.0
    std = np.sqrt(np.maximum(squares / count / 255.0 ** 2 - mean ** 2, 0.0))
    return mean.round(6).tolist(), std.round(6).tolist()


def channel_statistics(dataset: ImageSet, max_images: int, seed: int, split: str = "",
                       progress: Progress = None):
    """Per-channel mean and std of RGB pixels in [0, 1], over every pixel of the images used.

    Returns:
        (mean [3], std [3], number of images used)
    """
    if len(dataset) == 0:
        return [None] * 3, [None] * 3, 0
    if isinstance(dataset, ArrayImageSet):
        return _array_statistics(dataset.items) + (len(dataset),)
    chosen = np.arange(len(dataset))
    if len(chosen) > max_images:
        chosen = np.sort(np.random.default_rng(seed).choice(chosen, max_images, replace=False))
    total = np.zeros(3)
    squares = np.zeros(3)
    count = 0
    for done, index in enumerate(chosen, start=1):
        try:
            image = np.asarray(dataset.load(int(index)), dtype=np.float64) / 255.0
        except UnusableImage:
            continue
        flat = image.reshape(-1, 3)
        total += flat.sum(0)
        squares += (flat ** 2).sum(0)
        count += len(flat)
        if progress and (done % 200 == 0 or done == len(chosen)):
            progress(f"channel statistics of {split}", done, len(chosen))
    if count == 0:
        return [None] * 3, [None] * 3, 0
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    return mean.round(6).tolist(), std.round(6).tolist(), len(chosen)


def format_stats(stats: dict) -> str:
    """The report as a plain-text table for the terminal."""
    splits = stats["splits"]
    multilabel = stats.get("task") == "multilabel"  # stats.json of older runs has no task
    kind = (f"labels, {splits['train']['labels_per_image']:.2f} per training image"
            if multilabel else "classes")
    lines = [f"Data set '{stats['source']}': {stats['num_classes']} {kind}, "
             f"{stats['total_images']:,} images", ""]
    header = f"{'split':<6}{'images':>9}{'balance':>9}  {'width min/med/max':<19}{'height min/med/max':<20}{'mean (R, G, B)':<23}{'std (R, G, B)':<23}formats"
    lines.append(header)
    for split, info in splits.items():
        lines.append(f"{split:<6}{info['num_images']:>9,}{_num(info['class_balance']):>9}  "
                     f"{_size(info['image_size']['width']):<19}{_size(info['image_size']['height']):<20}"
                     f"{_triple(info['channel_mean']):<23}{_triple(info['channel_std']):<23}"
                     + ", ".join(f"{k} {v:,}" for k, v in info["formats"].items()))
    lines += _imbalance_line(splits.get("train", {}).get("imbalance"), multilabel)
    lines += ["", f"{'label' if multilabel else 'class':<24}"
              + "".join(f"{split:>9}" for split in splits)]
    for name in stats["class_names"]:
        lines.append(f"{name[:23]:<24}" + "".join(f"{splits[s]['per_class'][name]:>9,}" for s in splits))
    # multi-label columns add up to more than the images: the last row counts images
    lines.append(f"{'images' if multilabel else 'total':<24}"
                 + "".join(f"{splits[s]['num_images']:>9,}" for s in splits))
    lines.append("")
    skipped = stats["skipped"]
    lines.append(f"skipped files: {len(skipped)}" + ("" if skipped else " (none)"))
    lines += [f"  {item['path']}: {item['reason']}" for item in skipped[:20]]
    if len(skipped) > 20:
        lines.append(f"  ... and {len(skipped) - 20} more in stats.json")
    if stats["empty_classes"]:
        lines.append(f"empty class folders left out: {', '.join(stats['empty_classes'])}")
    return "\n".join(lines)


def _imbalance_line(imbalance, multilabel: bool) -> list:
    """The hint for a training split whose largest class is `IMBALANCE_WARNING` times its
    smallest or more (the balanced sampler draws by class, so multi-label data has only the
    weights)."""
    if imbalance is None or imbalance < IMBALANCE_WARNING:
        return []
    remedies = "train.class_weights: balanced" + ("" if multilabel else
                                                  " or data.sampler: balanced")
    unit = "label" if multilabel else "class"
    return [f"imbalanced: the largest {unit} has {imbalance:.1f}x the images of the smallest; "
            f"try {remedies}"]


def _num(value):
    return "-" if value is None else f"{value:.2f}"


def _size(axis: dict) -> str:
    if axis["min"] is None:
        return "-"
    return f"{axis['min']}/{axis['median']:g}/{axis['max']}"


def _triple(values) -> str:
    if values is None or values[0] is None:
        return "-"
    return ", ".join(f"{v:.3f}" for v in values)


def save_stats(stats: dict, path) -> Path:
    """Write stats.json (UTF-8, indented)."""
    path = Path(path)
    path.write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def mean_std_from_stats(stats: dict, split: str = "train") -> Dict[str, list]:
    """The channel mean and std of a split, for `augment.mean/std: dataset`."""
    info = stats["splits"][split]
    return {"mean": info["channel_mean"], "std": info["channel_std"]}
