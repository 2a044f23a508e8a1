"""How many images/s the training input pipeline yields (`tools/benchmark_data.py`): decoding,
augmentation and collation for each number of DataLoader workers, no model; and for generated
fractals, how fast they are rendered."""

import time
from typing import Sequence

from ..data.builder import prepare_data
from ..data.loaders import loader_throughput
from ..progress import Progress
from .builders import resolve_image_size


def data_pipeline_throughput(config, workers: Sequence[int] = (0, 2), epochs: int = 2,
                             progress: Progress = None) -> dict:
    """Images/s of the configured training input pipeline (decode, augment, collate; no model)
    for each number of DataLoader workers.

    Returns:
        dict with `source`, `images` (training images), `image_size`, `batch_size` and `rows`
        (per worker count: `num_workers`, `images`, `seconds`, `images_per_s`).
    """
    data = prepare_data(config, resolve_image_size(config), progress)
    rows = [loader_throughput(data.train, config.data.batch_size, count, epochs)
            for count in workers]
    result = {"source": config.data.source, "images": len(data.train),
              "image_size": data.preprocessing.image_size,
              "batch_size": config.data.batch_size, "rows": rows}
    if config.data.source == "fractals":
        result["render"] = fractal_render_time(config.data, epochs)
    return result


def fractal_render_time(data_config, repeats: int = 2) -> dict:
    """Seconds (best of `repeats`) to render the configured fractals from nothing, the cache
    not used: `images`, `seconds`, `images_per_s`."""
    from ..data.fractals import render_fractals

    seconds = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        images, _ = render_fractals(data_config.fractal_classes, data_config.fractal_per_class,
                                    data_config.fractal_size, data_config.fractal_seed)
        seconds.append(time.perf_counter() - start)
    best = min(seconds)
    return {"images": len(images), "size": data_config.fractal_size,
            "seconds": round(best, 3), "images_per_s": round(len(images) / best, 1)}
