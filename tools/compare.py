"""Compare runs: `python tools/compare.py output/run_a output/run_b [--output DIR]`.

Writes comparison.png (loss and accuracy curves overlaid) and comparison.csv (final numbers).
"""

import sys

from vit.cli.compare import cli

if __name__ == "__main__":
    sys.exit(cli())
