"""Time every way of running a ViT here: `python tools/benchmark.py -m ViT_base_patch16_384`.

Eager, paddle.jit.to_static and Paddle Inference (fp32; bf16 where the CPU has it natively),
training images/s, the matrix-product ceiling, and PyTorch when installed. The tool lives in
`vit.cli.benchmark`, shared with the `vit-benchmark` command.
"""

import sys

from vit.cli.benchmark import cli

if __name__ == "__main__":
    sys.exit(cli())
