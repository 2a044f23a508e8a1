"""Probe a model's frozen features: `python tools/probe.py --weights CKPT --shots 5 10`.

Linear few-shot accuracy on the config's data set (the paper's Figure 4 measure). The tool lives
in `vit.cli.probe`, shared with the `vit-probe` command.
"""

import sys

from vit.cli.probe import cli

if __name__ == "__main__":
    sys.exit(cli())
