"""Train a few steps with the project's loop and save this process's parameters.

Run alone (one process, global batch B) or under
`python -m paddle.distributed.launch --nproc_per_node 2` (two processes of B/2 each);
tests/test_distributed.py compares the saved parameters.
"""

import sys
from pathlib import Path

import numpy as np
import paddle

from vit.config import load_config
from vit.data.builder import prepare_data
from vit.data.mixing import Mixing
from vit.data.loaders import build_loader
from vit.engine.loop import LoopState, StepControl, train_one_epoch
from vit.engine.optim import build_optimizer, build_scheduler
from vit.engine.runtime import seed_everything, setup_runtime
from vit.models import create_model


def main(output: Path, global_batch: int):
    runtime = setup_runtime("cpu", 1)
    config = load_config(None, ["data.train_fraction=0.1", "optim.lr=3e-3"])
    data = prepare_data(config, 16)
    seed_everything(0)
    with paddle.utils.unique_name.guard():
        model = create_model("ViT_tiny_patch4_16", num_classes=10)
    loader = build_loader(data.train, global_batch // runtime.world_size, True, seed=0,
                          rank=runtime.rank, world_size=runtime.world_size)
    scheduler = build_scheduler(config.optim, 1, len(loader))
    optimizer = build_optimizer(config.optim, model, scheduler)
    train_model = paddle.DataParallel(model) if runtime.distributed else model
    control = StepControl(seed=0, mixing=Mixing(10), show_progress=False)
    state = LoopState()
    train_one_epoch(train_model, loader, optimizer, scheduler, state, control, 1)
    name = f"rank{runtime.rank}" if runtime.distributed else "single"
    np.savez(output / f"{name}.npz", steps=state.global_step,
             **{key: value.numpy() for key, value in model.state_dict().items()})


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
