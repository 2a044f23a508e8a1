"""Convert published ViT weights (timm, Hugging Face, Google .npz) for vit-paddle:

    python tools/convert.py ViT-B_16.npz output/pretrained/ViT-B_16.safetensors
    python tools/convert.py hf_model_folder/ output/pretrained/vit_hf.safetensors --from hf

The tool lives in `vit.cli.convert`.
"""

import sys

from vit.cli.convert import cli

if __name__ == "__main__":
    sys.exit(cli())
