"""`vit-app` / `python tools/app.py [--host 127.0.0.1] [--port 7860]`: the web app."""

import argparse
import sys

from . import run_cli, setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vit-app", description="The four-tab web app: data, "
                                     "preprocessing, training, inference.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--output", default="output", help="folder of the runs")
    parser.add_argument("--data", default="data", help="folder of data sets and downloads")
    parser.add_argument("--max-upload", default="20mb", help="largest upload, e.g. 20mb")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    from ..app.server import launch_app

    print(f"vit-paddle app on http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    launch_app(args.host, args.port, args.output, args.data, args.max_upload)
    return 0


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
