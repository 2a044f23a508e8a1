"""`vit-scaling` / `python tools/scaling.py`: the data-scaling experiments, a ViT against a CNN
of similar size, trained from scratch on growing shares of the training split, or
(`--pretrain fractals`) pre-trained on growing sets of generated fractals and transferred
(docs/scaling.md)."""

import argparse
import sys
from pathlib import Path

from . import add_config_args, config_from_args, run_cli, setup_logging
from ..engine.scaling import ScalingPlan, default_plan, format_results, run_scaling
from ..engine.transfer import format_transfer, run_transfer
from ..engine.transfer_runs import PRETRAIN_SOURCE, TransferPlan, transfer_plan


def _listed(values) -> str:
    return " ".join(str(value) for value in values)


def build_parser() -> argparse.ArgumentParser:
    scaling, transfer = ScalingPlan(), TransferPlan()  # their defaults
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
    group = parser.add_argument_group(f"the transfer experiment (--pretrain {PRETRAIN_SOURCE})")
    group.add_argument("--sizes", nargs="+", type=int, metavar="N",
                       help=f"pre-training images per point (default {_listed(transfer.sizes)})")
    group.add_argument("--classes", type=int,
                       help=f"fractal classes (default {transfer.classes})")
    group.add_argument("--pretrain-steps", type=int, help="optimizer steps of every "
                       f"pre-training run (default {transfer.pretrain_steps})")
    group.add_argument("--finetune-fraction", type=float, help="share of the training split "
                       f"to fine-tune on (default {transfer.finetune_fraction:g})")
    group.add_argument("--shots", nargs="+", type=int, help="linear few-shot probes, images "
                       f"per class (default {_listed(transfer.shots)})")
    group.add_argument("--draws", type=int,
                       help=f"draws of the k images (default {transfer.draws})")
    group.add_argument("--fractal-root", help="cache folder of the fractals "
                       "(default data/fractals)")
    parser.add_argument("--output", help="folder of the runs, the JSON and the figure "
                        "(default output/scaling, or output/transfer with --pretrain)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    config = config_from_args(args)
    models = args.models or [config.model.name, *ScalingPlan().models[1:]]

    def progress(stage, done, total):
        print(f"[{done}/{total}] {stage}", file=sys.stderr, flush=True)

    if args.pretrain:
        output = Path(args.output or "output/transfer")
        plan = transfer_plan(models=models, sizes=args.sizes, classes=args.classes,
                             pretrain_steps=args.pretrain_steps, seeds=args.seeds,
                             finetune_fraction=args.finetune_fraction,
                             finetune_epochs=args.epochs, finetune_min_steps=args.min_steps,
                             shots=args.shots, draws=args.draws,
                             fractal_root=args.fractal_root)
        result = run_transfer(config, plan, output, progress)
        print(format_transfer(result["results"]))
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
