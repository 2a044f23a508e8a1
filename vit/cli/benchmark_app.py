"""`python tools/benchmark_app.py --weights CHECKPOINT [--url URL] [--requests 20]`: many
predictions at once against a running app (`tools/app.py`), each answer checked against
`tools/infer.py`'s, the latencies as min / median / max."""

import argparse
import sys

from . import run_cli, setup_logging
from ..errors import VitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmark_app", description="Concurrent predictions against a running web app, "
        "checked against tools/infer.py and timed.")
    parser.add_argument("--url", default="http://127.0.0.1:7860/", help="the running app")
    parser.add_argument("--weights", required=True, help="a checkpoint the app can load")
    parser.add_argument("--requests", type=int, default=20, help="predictions sent at once")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.requests < 1:
        raise VitError(f"--requests must be at least 1, got {args.requests}")
    from ..app.bench import benchmark_app
    from ..engine.run_folder import weights_in

    weights = weights_in(args.weights)
    if not weights.is_file():
        raise VitError(f"checkpoint '{weights}' does not exist", "give a best.pdparams")
    result = _reach(benchmark_app, args.url, weights, args.requests)
    print(f"{result['requests']} concurrent predictions: {result['right']} answers equal "
          "tools/infer.py's")
    print(f"latency min {result['min']:.2f} s, median {result['median']:.2f} s, max "
          f"{result['max']:.2f} s; the whole burst {result['seconds']:.2f} s")
    return 0 if result["right"] == result["requests"] else 1


def _reach(benchmark, url, weights, requests):
    """The benchmark, with an app that is not there said in one line."""
    import httpx

    try:
        return benchmark(url, weights, requests)
    except (httpx.TransportError, OSError) as error:
        raise VitError(f"no app answers at {url} ({type(error).__name__})",
                       "start it with python tools/app.py, or give --url") from None


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
