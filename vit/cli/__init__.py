"""Shared command-line plumbing: the `-c`/`-o` arguments, logging, and one-line errors.

Each `vit.cli.<tool>` module parses arguments and calls one library function; `run_cli` turns a
`VitError` (a user's mistake) into one line on stderr and exit code 2, never a traceback.
"""

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..errors import VitError

EXIT_USER_ERROR = 2

# Library parameters (or a parameter set to a value) whose flag is not `--` + the name with
# dashes (see `flag_of`).
_FLAGS = {"config": "-c CONFIG", "fmt": "--format",
          "runtime=onnx": "--onnx", "runtime=paddle": "--inference-model",
          "runtime=openvino": "--openvino", "runtime": "--inference-model, --onnx or --openvino",
          "finetune_epochs": "--epochs", "finetune_min_steps": "--min-steps",
          "distance_images": "--images or --data"}


def flag_of(parameter: str) -> str:
    """How the command line names a library parameter that an error marks (errors.param):
    `precision` is `--precision`, `precision=fp32` is `--precision fp32`; a config key is its
    own name (`optim.lr`, as YAML and the docs write it), and set to a value an override
    (`-o optim.lr=0.001`)."""
    if parameter in _FLAGS:
        return _FLAGS[parameter]
    name, _, value = parameter.partition("=")
    if "." in name:
        return f"-o {parameter}" if value else name
    flag = _FLAGS.get(name, "--" + name.replace("_", "-"))
    return f"{flag} {value}" if value else flag


def add_config_args(parser: argparse.ArgumentParser, required: bool = False):
    """Add PaddleClas's `-c CONFIG` and repeatable `-o section.key=value` arguments."""
    parser.add_argument("-c", "--config", required=required, metavar="CONFIG",
                        help="YAML config file (default: configs/default.yaml)")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key, e.g. -o train.epochs=5 (repeatable)")


def config_from_args(args, extra_overrides=()):
    """The config the tools use: `-c FILE` (or configs/default.yaml) with the `-o` overrides."""
    from ..config import load_config, load_default_config

    overrides = list(args.override) + list(extra_overrides)
    return load_config(args.config, overrides) if args.config else load_default_config(overrides)


def recorded_config_args(args):
    """(config, overrides) for tools that load a checkpoint: `-c` replaces the config the
    checkpoint recorded (with the `-o` overrides applied to it); `-o` alone changes the
    recorded one."""
    from ..config import load_config

    if args.config:
        return load_config(args.config, args.override), []
    return None, list(args.override)


def add_weights_args(parser: argparse.ArgumentParser, required: bool = True):
    """`--weights CHECKPOINT` (a run's checkpoint) or `--pretrained NAME[.TAG]|PATH|URL`
    (published weights), one of them; returns the group, for tools that add more sources."""
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument("--weights", help="checkpoint .pdparams (its .json beside it), or a run "
                                          "folder (uses checkpoints/best)")
    source.add_argument("--pretrained", metavar="NAME[.TAG]|PATH|URL",
                        help="published weights by name (tools/convert.py --list), with their "
                             "classes and preprocessing; or a weights file or URL for the "
                             "config's model")
    return source


def loaded_from_args(args):
    """The model `--weights` or `--pretrained` names, with `-c`/`-o` applied."""
    from ..engine.inference import load_for_inference, load_published

    config, overrides = recorded_config_args(args)
    if args.pretrained:
        return load_published(args.pretrained, config, overrides)
    return load_for_inference(args.weights, config, overrides)


def beside_run(weights: Path, name: str, fallback: Path) -> Path:
    """`<run>/<name>` for a checkpoint inside a run's folder, else `fallback`."""
    from ..engine.run_folder import RunFolder

    run = RunFolder.holding(weights)
    return run.path / name if run is not None else fallback


def setup_logging(verbose: bool = False):
    """Log INFO lines (DEBUG with `verbose`) of the `vit` package to stderr, without prefixes."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("vit")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def run_cli(main: Callable[[Optional[Sequence[str]]], Optional[int]],
            argv: Optional[Sequence[str]] = None) -> int:
    """Run `main(argv)` in a process that takes the fast CPU settings (the tool owns it:
    vit/cpu.py), mapping user errors to one line and exit code 2."""
    from .. import cpu

    cpu.configure()
    try:
        code = main(argv)
    except VitError as error:
        print(f"error: {error.worded({name: flag_of(name) for name in error.parameters})}",
              file=sys.stderr)
        if error.details:
            print(error.details, file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `vit-summary | head`: the reader left; nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return int(code or 0)
