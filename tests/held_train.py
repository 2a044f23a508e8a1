"""`tools/train.py` that holds still inside an epoch, for the tests that stop a run at a point
they know, whatever the machine's speed.

    python tests/held_train.py EPOCH BATCH MARKER [tools/train.py arguments ...]

runs the trainer exactly as `tools/train.py ARGS` does, except that once batch BATCH of epoch
EPOCH (both counted from 1) has been trained it writes MARKER and waits for a line on stdin.
The test waits for MARKER, sends its signal, and (for a signal the trainer survives) writes the
line. The hold is the trainer's own progress callback, which the loop calls after each batch,
so nothing else of the run changes.
"""

import sys
from pathlib import Path

import vit.engine.trainer as trainer
from vit.cli.train import cli


def hold_at(epoch: int, batch: int, marker: Path):
    def progress(stage: str, done: int, total: int):
        if stage.startswith(f"epoch {epoch}/") and done == batch:
            marker.write_text(f"{stage} {done}\n")
            sys.stdin.readline()  # a signal's handler runs meanwhile; the read then resumes

    return progress


if __name__ == "__main__":
    epoch, batch, marker = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    del sys.argv[1:4]
    progress = hold_at(epoch, batch, marker)
    train = trainer.train
    trainer.train = lambda config, _=None, stop=None: train(config, progress, stop)
    sys.exit(cli())
