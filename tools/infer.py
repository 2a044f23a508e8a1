"""Predict images or evaluate a trained ViT: results, accuracy, per-class report, confusion matrix.

    python tools/infer.py --weights output/<run>/checkpoints/best.pdparams --eval
    python tools/infer.py --weights output/<run>/checkpoints/best.pdparams --images photos/

The tool lives in `vit.cli.infer`, shared with the `vit-infer` command.
"""

import sys

from vit.cli.infer import cli

if __name__ == "__main__":
    sys.exit(cli())
