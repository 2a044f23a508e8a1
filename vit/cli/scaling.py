"""`vit-scaling` / `python tools/scaling.py`: the data-scaling experiments, a ViT against a CNN
of similar size, trained from scratch on growing shares of the training split, or
(`--pretrain fractals`) pre-trained on growing sets of generated fractals and transferred
(docs/scaling.md)."""

import argparse
import sys
import time
from pathlib import Path

from . import add_config_args, config_from_args, run_cli, setup_logging
from ..engine.scaling import ScalingPlan, default_plan, format_results, run_scaling
from ..engine.transfer import format_transfer, run_transfer
from ..engine.transfer_plan import PLANS, transfer_plan
from ..engine.transfer_runs import PRETRAIN_SOURCE
from ..errors import ConfigError


def _listed(values) -> str:
    return " ".join(str(value) for value in values)


def build_parser() -> argparse.ArgumentParser:
    scaling, transfer = ScalingPlan(), PLANS["default"]
    parser = argparse.ArgumentParser(prog="vit-scaling", description=__doc__.splitlines()[0])
    add_config_args(parser)
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help=f"the config's model and {_listed(scaling.models[1:])} unless "
                        "given")
    parser.add_argument("--fractions", nargs="+", type=float, metavar="SHARE",
                        help="shares of the training split "
                        f"(default {_listed(scaling.fractions)})")
    parser.add_argument("--seeds", nargs="+", type=int,
                        help=f"seeds per point (default {_listed(scaling.seeds)}; "
                        f"{_listed(transfer.seeds)} with --pretrain)")
    parser.add_argument("--epochs", type=int,
                        help="passes over its training images of every run, of the "
                        f"fine-tuning with --pretrain (default {scaling.epochs})")
    parser.add_argument("--min-steps", type=int,
                        help="but at least this many optimizer steps "
                        f"(default {scaling.min_steps})")
    parser.add_argument("--pretrain", choices=[PRETRAIN_SOURCE],
                        help="pre-train on growing sets of generated fractals, then transfer "
                        "to the config's data (fine-tuning and linear few-shot)")
    _add_transfer_args(parser.add_argument_group(
        f"the transfer experiment (--pretrain {PRETRAIN_SOURCE}; defaults: the default plan's)"))
    parser.add_argument("--output", help="folder of the runs, the JSON and the figure "
                        "(default output/scaling; with --pretrain output/transfer, or "
                        "output/transfer-<plan> for another plan)")
    return parser


def _add_transfer_args(group):
    transfer = PLANS["default"]
    group.add_argument("--plan", choices=list(PLANS), default="default",
                       help="the plan the options below change: default (about 20 minutes on "
                       "2 cores) or large (the crossover run of docs/scaling.md, hours)")
    group.add_argument("--sizes", nargs="+", type=int, metavar="N",
                       help=f"pre-training images per point (default {_listed(transfer.sizes)})")
    group.add_argument("--classes", nargs="+", type=int, metavar="C", help="fractal classes, "
                       f"one for every size or one per size (default {_listed(transfer.classes)})")
    group.add_argument("--pretrain-epochs", type=int, help="passes over its images of every "
                       f"pre-training run (default {transfer.pretrain_epochs}) ...")
    group.add_argument("--pretrain-steps", type=int, help="... but at least this many optimizer "
                       f"steps (default {transfer.pretrain_steps})")
    group.add_argument("--one-seed-from", type=int, metavar="N",
                       help="sizes of N images and more take the first seed only")
    group.add_argument("--larger-models", nargs="+", metavar="NAME",
                       help="a larger pair, pre-trained only at --larger-sizes")
    group.add_argument("--larger-sizes", nargs="+", type=int, metavar="N")
    group.add_argument("--hours", type=float, help="stop after this many hours (a stretch of "
                       "a long plan): the run in progress is saved, and the same command "
                       "continues it")
    group.add_argument("--finetune-fraction", type=float, help="share of the training split "
                       f"to fine-tune on (default {transfer.finetune_fraction:g})")
    group.add_argument("--shots", nargs="+", type=int, help="linear few-shot probes, images "
                       f"per class (default {_listed(transfer.shots)})")
    group.add_argument("--draws", type=int,
                       help=f"draws of the k images (default {transfer.draws})")
    group.add_argument("--fractal-root", help="cache folder of the fractals "
                       "(default data/fractals)")


def _stretch(hours):
    """The stop request of a stretch of `hours` (None: no limit)."""
    if hours is None:
        return None
    if not hours > 0:
        raise ConfigError(f"--hours must be positive, got {hours}")
    deadline = time.monotonic() + hours * 3600
    return lambda: time.monotonic() > deadline


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    config = config_from_args(args)
    models = args.models or [config.model.name, *ScalingPlan().models[1:]]

    def progress(stage, done, total):
        print(f"[{done}/{total}] {stage}", file=sys.stderr, flush=True)

    if args.pretrain:
        output = Path(args.output or ("output/transfer" if args.plan == "default"
                                      else f"output/transfer-{args.plan}"))
        plan = transfer_plan(args.plan, models=models, sizes=args.sizes,
                             classes=args.classes, pretrain_epochs=args.pretrain_epochs,
                             pretrain_steps=args.pretrain_steps, seeds=args.seeds,
                             one_seed_from=args.one_seed_from,
                             larger_models=args.larger_models, larger_sizes=args.larger_sizes,
                             finetune_fraction=args.finetune_fraction,
                             finetune_epochs=args.epochs, finetune_min_steps=args.min_steps,
                             shots=args.shots, draws=args.draws,
                             fractal_root=args.fractal_root)
        result = run_transfer(config, plan, output, progress, _stretch(args.hours))
        print(format_transfer(result["results"]))
        if result["stopped"]:
            print(f"\n{result['stopped']}: run the same command to continue")
    else:
        output = Path(args.output or "output/scaling")
        plan = default_plan(models, args.fractions, args.seeds, args.epochs, args.min_steps)
        result = run_scaling(config, plan, output, progress)
        print(format_results(result["results"]))
    print(f"\nfigure: {result['figure']}\nnumbers: {result['json']}")
    print(f"curves of any two runs: python tools/compare.py {output}/<run> {output}/<run>")
    return 0


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
