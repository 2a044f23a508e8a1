"""`python tools/convert.py SRC DST [--from timm|hf|jax|paddle]`: published ViT weights into this
project's layout, written as .safetensors (or .pdparams when DST ends so).
`python tools/convert.py --list [PATTERN]`: the weights that can be fetched by name."""

import argparse
import json
import sys
from pathlib import Path

from . import run_cli, setup_logging
from ..errors import VitError
from ..engine.model_record import SAFETENSORS_FORMAT
from ..models.convert import FORMATS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vit-convert", description="Convert timm, Hugging Face "
                                     "or Google .npz ViT weights for vit-paddle.")
    parser.add_argument("src", nargs="?", help="weights file (.pth/.bin/.safetensors/.npz/"
                        ".pdparams) or a Hugging Face model folder")
    parser.add_argument("dst", nargs="?",
                        help="output file: .safetensors (default format) or .pdparams")
    parser.add_argument("--list", nargs="?", const="", metavar="PATTERN",
                        help="list the published weights that --pretrained NAME[.TAG] and "
                             "create_model(pretrained=...) fetch by name, and stop")
    parser.add_argument("--from", dest="fmt", choices=FORMATS,
                        help="source layout (default: recognised from the key names)")
    parser.add_argument("--num-heads", type=int,
                        help="attention heads, for timm files (default: width / 64, ViT-H 16)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.list is not None:
        print(format_registry(args.list))
        return 0
    if not args.src or not args.dst:
        raise VitError("give SRC and DST (or --list)", "e.g. tools/convert.py ViT-B_16.npz "
                       "output/pretrained/ViT-B_16.safetensors")
    from ..models.convert import convert_state, detect_format, read_weights
    from ..serialization import save, save_safetensors

    state, meta = read_weights(args.src)
    fmt = args.fmt or detect_format(state)
    converted, model_args = convert_state(state, fmt, meta, args.num_heads)
    class_names = model_args.pop("class_names", None)
    dst = Path(args.dst)
    if dst.suffix == ".pdparams":
        save(converted, dst)
    elif dst.suffix == ".safetensors":
        metadata = {"format": SAFETENSORS_FORMAT, "source_format": fmt,
                    "model_args": json.dumps(model_args)}
        if class_names:
            metadata["class_names"] = json.dumps(class_names)
        save_safetensors(converted, dst, metadata)
    else:
        raise VitError(f"output '{dst}' must end in .safetensors or .pdparams",
                       "e.g. output/pretrained/ViT-B_16.safetensors")
    print(f"converted {args.src} ({fmt}) -> {dst}")
    print("model: " + ", ".join(f"{k}={v}" for k, v in model_args.items()))
    return 0


def format_registry(pattern: str = "") -> str:
    """The published weights as a table: name (the first of a model is its default), input
    size, classes, the ImageNet top-1 their publisher reports, and where they come from."""
    from ..models.pretrained_registry import PRETRAINED

    rows = [(entry.name + (" (default)" if index == 0 else ""), str(entry.image_size),
             str(entry.num_classes or "none"),
             f"{entry.reported_top1:.2%}" if entry.reported_top1 else "-",
             entry.url or f"hub:{entry.hub}")
            for model in sorted(PRETRAINED) for index, entry in enumerate(PRETRAINED[model])
            if pattern.lower() in entry.name.lower()]
    header = ("name", "size", "classes", "top-1", "source")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    return "\n".join("  ".join(f"{cell:<{w}}" for cell, w in zip(row[:4], widths)) + "  " +
                      row[4] for row in [header, *rows])


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
