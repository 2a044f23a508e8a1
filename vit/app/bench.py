"""Many predictions at once against a running app: are all answers right, and how long does each
wait? (`tools/benchmark_app.py`; the web app's test asks the same of twenty requests.)"""

import concurrent.futures
import logging
import time
from pathlib import Path
from typing import Dict, List, Sequence


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
        label, _, _ = client.predict(str(weights), [handle_file(str(image))],
                                     api_name="/on_predict")
        return image.name, label["label"], time.perf_counter() - started

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(requests) as pool:
        results: List = list(pool.map(ask, range(requests)))
    return {"answers": [(name, label) for name, label, _ in results],
            "latencies": [seconds for _, _, seconds in results],
            "seconds": time.perf_counter() - started}
