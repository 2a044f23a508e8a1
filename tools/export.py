"""Export a checkpoint for deployment: `python tools/export.py --weights output/<run>/checkpoints/best.pdparams`.

Writes a static graph for Paddle Inference, inference.yml (preprocessing, class names) and the
weights as .safetensors. The tool lives in `vit.cli.export`.
"""

import sys

from vit.cli.export import cli

if __name__ == "__main__":
    sys.exit(cli())
