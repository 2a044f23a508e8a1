"""Look inside a trained ViT: `python tools/visualize.py --weights CKPT --image IMG`.

Attention rollout and per-head maps for each image, mean attention distance per head against
depth, position-embedding similarity and the patch filters' principal components (the paper's
Figures 6 and 7). The tool lives in `vit.cli.visualize`, shared with `vit-visualize`.
"""

import sys

from vit.cli.visualize import cli

if __name__ == "__main__":
    sys.exit(cli())
