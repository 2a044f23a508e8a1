"""Twenty (or N) predictions at once against a running app, checked and timed:

    python tools/app.py &                      # or make app
    python tools/benchmark_app.py --weights output/demo/checkpoints/best.pdparams

Every answer is compared with `tools/infer.py`'s for the same image; latencies are printed as
min / median / max.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from vit.cli import run_cli, setup_logging


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    parser.add_argument("--weights", required=True, help="a checkpoint the app can load")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args(argv)
    setup_logging()
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    from vit.app.bench import concurrent_predictions
    from vit.engine.inference import load_for_inference, predict_paths

    folder = Path(tempfile.mkdtemp(prefix="vit-app-bench-"))
    digits = load_digits()
    images = []
    for index in range(8):
        images.append(folder / f"digit{index}.png")
        Image.fromarray((digits.images[index] * 255 / 16).astype("uint8")).save(images[-1])
    expected = {Path(row["path"]).name: row["top"][0][0] for row in
                predict_paths(load_for_inference(args.weights), images)["rows"]}
    burst = concurrent_predictions(args.url, Path(args.weights).resolve(), images, args.requests)
    right = sum(expected[name] == label for name, label in burst["answers"])
    latencies = np.asarray(burst["latencies"])
    print(f"{args.requests} concurrent predictions: {right} answers equal tools/infer.py's")
    print(f"latency min {latencies.min():.2f} s, median {np.median(latencies):.2f} s, "
          f"max {latencies.max():.2f} s; the whole burst {burst['seconds']:.2f} s")
    return 0 if right == args.requests else 1


if __name__ == "__main__":
    sys.exit(run_cli(main))
