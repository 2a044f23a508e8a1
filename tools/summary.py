"""Print a model's paddle.summary table: `python tools/summary.py [-m NAME] [--flops] [--check FILE]`.

The whole tool lives in `vit.cli.summary` so that `vit-summary` and this file behave the same.
"""

import sys

from vit.cli.summary import cli

if __name__ == "__main__":
    sys.exit(cli())
