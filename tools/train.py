"""Train a ViT: `python tools/train.py -c configs/X.yaml [-o section.key=value ...]`.

`--stats-only` writes the dataset report and stops. The tool lives in `vit.cli.train`, shared
with the `vit-train` command.
"""

import sys

from vit.cli.train import cli

if __name__ == "__main__":
    sys.exit(cli())
