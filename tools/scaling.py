"""The data-scaling experiment: `python tools/scaling.py [-c CONFIG] [--fractions ...]`.

Trains the config's ViT and a ResNet of similar size on growing stratified shares of the same
training split, each run seeing its images the same number of times, and plots test accuracy
against data size. The tool lives in `vit.cli.scaling`, shared with the `vit-scaling` command.
"""

import sys

from vit.cli.scaling import cli

if __name__ == "__main__":
    sys.exit(cli())
