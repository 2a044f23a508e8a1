"""The web app: `python tools/app.py`, then open http://127.0.0.1:7860.

Four tabs (data, preprocessing, training, inference) over the same library as the other tools;
training runs as its own process, so reloading the page never touches it. The tool lives in
`vit.cli.app`, shared with the `vit-app` command.
"""

import sys

from vit.cli.app import cli

if __name__ == "__main__":
    sys.exit(cli())
