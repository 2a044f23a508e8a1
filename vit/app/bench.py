"""Many predictions at once against a running app: are all answers right, and how long does each
wait? (`tools/benchmark_app.py`; the web app's test asks the same of twenty requests.)"""

import concurrent.futures
import logging
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from ..engine.inference import load_for_inference, predict_paths


def benchmark_app(url: str, weights, requests: int = 20, digits: int = 8) -> Dict:
    """`requests` predictions at once of `digits` digit images, each answer checked against
    `predict_paths` (what `tools/infer.py` answers) for the same checkpoint.

    Returns:
        dict with `right` (answers equal to the tool's), `requests`, and the latencies'
        `min`, `median` and `max` and the whole burst's `seconds`.
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    pixels = load_digits().images[:digits]
    weights = Path(weights).resolve()
    with tempfile.TemporaryDirectory(prefix="vit-app-bench-") as folder:
        images = []
        for index, digit in enumerate(pixels):
            images.append(Path(folder) / f"digit{index}.png")
            Image.fromarray((digit * 255 / 16).astype("uint8")).save(images[-1])
        expected = {Path(row["path"]).name: row["top"][0][0] for row in
                    predict_paths(load_for_inference(weights), images)["rows"]}
        burst = concurrent_predictions(url, weights, images, requests)
    latencies = np.asarray(burst["latencies"])
    return {"requests": requests,
            "right": sum(expected[name] == label for name, label in burst["answers"]),
            "min": float(latencies.min()), "median": float(np.median(latencies)),
            "max": float(latencies.max()), "seconds": burst["seconds"]}


def concurrent_predictions(url: str, weights, images: Sequence, requests: int = 20) -> Dict:
    """Send `requests` predictions at once (cycling through `images`) to the app at `url`.

    Returns:
        dict with `answers` [(image name, top class)], `latencies` (seconds each, in
        order) and `seconds` (wall time of the whole burst).
    """
    from gradio_client import Client, handle_file

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    client = Client(url, verbose=False)
    images = [Path(p) for p in images]

    def ask(index):
        image = images[index % len(images)]
        started = time.perf_counter()
        label = client.predict(str(weights), [handle_file(str(image))],
                               api_name="/on_predict")[0]  # then the labels line, rollout, table
        return image.name, label["label"], time.perf_counter() - started

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(requests) as pool:
        results: List = list(pool.map(ask, range(requests)))
    return {"answers": [(name, label) for name, label, _ in results],
            "latencies": [seconds for _, _, seconds in results],
            "seconds": time.perf_counter() - started}
