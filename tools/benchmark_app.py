"""Load-test a running web app: `python tools/benchmark_app.py --weights CHECKPOINT`.

    python tools/app.py &                      # or make app
    python tools/benchmark_app.py --weights output/demo/checkpoints/best.pdparams

The tool lives in `vit.cli.benchmark_app`.
"""

import sys

from vit.cli.benchmark_app import cli

if __name__ == "__main__":
    sys.exit(cli())
