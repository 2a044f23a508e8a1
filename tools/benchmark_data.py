"""Time the training input pipeline: `python tools/benchmark_data.py [-c CONFIG] [--workers 0 2]`.

Images/s of decoding, augmenting and batching, no model. The tool lives in
`vit.cli.benchmark_data`.
"""

import sys

from vit.cli.benchmark_data import cli

if __name__ == "__main__":
    sys.exit(cli())
