"""Embeddings and search: `python tools/embed.py --weights CKPT --query IMAGE --top-k 5`.

Writes the embeddings of a split (or `--images DIR`) beside the weights, prints the images
nearest to a query, or the nearest-neighbour accuracy of a split (`--eval`). The tool lives in
`vit.cli.embed`, shared with the `vit-embed` command.
"""

import sys

from vit.cli.embed import cli

if __name__ == "__main__":
    sys.exit(cli())
