"""`vit-embed` / `python tools/embed.py`: a model's embeddings of images, and search by them.

    python tools/embed.py --weights output/demo                       # index the training split
    python tools/embed.py --weights output/demo --query digit.png --top-k 5
    python tools/embed.py --weights output/demo --eval                # 1-NN accuracy on test
    python tools/embed.py --pretrained ViT_base_patch16_224 --images photos/ --query cat.jpg

The index (`<key>.npy`, `.csv` of path and label, `.json`) is kept in `<weights>.embeddings/`
and reused until the weights change (vit/engine/search.py).
"""

import argparse
import sys

from tqdm import tqdm

from . import add_config_args, add_weights_args, loaded_from_args, run_cli, setup_logging
from ..data.sources import SPLITS
from ..errors import VitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vit-embed", description="Embed images with a trained "
                                     "ViT and find the nearest ones to a query.")
    add_weights_args(parser)
    parser.add_argument("--images", metavar="DIR", help="index this folder (searched "
                        "recursively; an image's label is its class folder) instead of a split "
                        "of the model's data set")
    parser.add_argument("--split", default="train", choices=SPLITS,
                        help="the split to index (default: train)")
    parser.add_argument("--query", nargs="+", metavar="IMAGE",
                        help="print the indexed images nearest to these images")
    parser.add_argument("--top-k", type=int, help="neighbours shown (and, with --eval, "
                        "voting; default 5 with --query, 1 with --eval)")
    parser.add_argument("--eval", nargs="?", const="test", choices=SPLITS, metavar="SPLIT",
                        help="k-nearest-neighbour accuracy of SPLIT (default: test) against "
                             "the index")
    parser.add_argument("--block", type=int, help="embed with the class token of this block "
                        "(0 is the first, -1 the last; raw unless --norm); default: the class "
                        "token after the final norm, the probe's feature")
    parser.add_argument("--norm", action="store_true", help="with --block: through the final "
                        "norm")
    parser.add_argument("--index", metavar="JSON", help="search this saved index (its .json) "
                        "instead of building one")
    parser.add_argument("--batch-size", type=int, default=128)
    add_config_args(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    if (args.top_k is not None and args.top_k < 1) or args.batch_size < 1:
        raise VitError("--top-k and --batch-size must be at least 1")
    from ..engine import search

    loaded = loaded_from_args(args)
    if args.query:  # before minutes of indexing
        search.readable_queries(args.query, loaded.config.data.max_image_pixels)
    with _bars() as progress:
        index = _index(search, loaded, args, progress)
        print(f"index: {len(index.names):,} images, {index.vectors.shape[1]} dimensions "
              f"({_embedding_words(index.record['embedding'])})")
        if args.eval:
            embedding = index.record["embedding"]  # the queries are embedded as the index
            queries = search.index_for(loaded, split=args.eval, block=embedding["block"],
                                       norm=embedding["norm"], batch_size=args.batch_size,
                                       progress=progress)
            k = args.top_k or 1
            accuracy = search.knn_accuracy(index, queries, k)
            print(f"{k}-nearest-neighbour accuracy of the {args.eval} split "
                  f"({len(queries.names):,} images) against the index: {accuracy:.4f}")
    for result in (search.similar_images(loaded, index, args.query, args.top_k or 5,
                                         args.batch_size) if args.query else []):
        print(f"\n{result['query']}:")
        for rank, near in enumerate(result["nearest"], start=1):
            print(f"  {rank}. {near['similarity']:.4f}  {near['label'] or '-':<12} {near['name']}")
    return 0


def _index(search, loaded, args, progress):
    if args.index:
        index = search.read_index(args.index)
        if index is None:
            raise VitError(f"--index {args.index} does not exist", "give an index's .json, or "
                           "leave out --index to build one")
        search.check_index_fits(index, loaded, args.index)
        return index
    return search.index_for(loaded, args.images, args.split, args.block, args.norm,
                            args.batch_size, progress)


def _embedding_words(embedding: dict) -> str:
    if embedding["block"] is None:
        return "the class token after the final norm"
    return (f"the class token of block {embedding['block']}"
            + (", through the final norm" if embedding["norm"] else ""))


class _bars:
    """A tqdm bar per stage of the library's progress(stage, done, total) calls."""

    def __enter__(self):
        self.bar, self.stage = None, None
        return self

    def __call__(self, stage: str, done: int, total: int):
        if stage != self.stage:
            self.__exit__()
            self.bar = tqdm(total=total, desc=stage, leave=False, disable=not sys.stderr.isatty())
            self.stage = stage
        self.bar.n = done
        self.bar.refresh()

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
