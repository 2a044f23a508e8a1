"""The reference every benchmark row is compared with: the same architecture in PyTorch
(transformers' `ViTForImageClassification`), timed in this process with the same thread count,
in float32, bfloat16 autocast (where the CPU has it) and int8 dynamic quantisation, and its
training step. Without torch or transformers installed, it gives no row."""

import contextlib
import copy
import warnings
from typing import Dict, List, Optional

import numpy as np

from .. import cpu
from ..models.layers import to_2tuple
from .paddle_predictor import native_bf16
from .timing import Timing, median_seconds


def torch_vit(args: dict, num_classes: Optional[int] = None):
    """The same architecture in PyTorch (transformers' ViTForImageClassification), or None
    when torch or transformers is not installed."""
    try:
        import torch
        import transformers
    except ImportError:
        return None
    torch.manual_seed(0)
    size = to_2tuple(args["img_size"])[0]
    config = transformers.ViTConfig(
        image_size=size, patch_size=args["patch_size"], hidden_size=args["embed_dim"],
        num_hidden_layers=args["depth"], num_attention_heads=args["num_heads"],
        intermediate_size=int(args["embed_dim"] * args["mlp_ratio"]),
        qkv_bias=args["qkv_bias"], layer_norm_eps=args["epsilon"],
        num_labels=num_classes or args.get("num_classes", 1000))
    return transformers.ViTForImageClassification(config)


def pytorch_inference_timings(args: dict, batch: int, repeats: int, warmup: int,
                              gflop: float) -> List[Timing]:
    """The reference: PyTorch eager with the same threads, batch 1 and `batch`."""
    model = torch_vit(args)
    if model is None:
        return []
    import torch

    torch.set_num_threads(cpu.math_threads())
    model.eval()
    size = model.config.image_size
    int8_models = _torch_int8_models(model)  # quantised once, timed at each batch size
    rows = []
    for b in sorted({1, batch}):
        images = torch.from_numpy(np.random.default_rng(b).standard_normal(
            (b, 3, size, size)).astype(np.float32))
        with torch.no_grad():
            seconds = median_seconds(lambda: model(pixel_values=images), repeats, warmup)
        rows.append(Timing("pytorch eager (transformers)", b, seconds, gflop))
        if native_bf16():  # PyTorch's reduced precision on a CPU: autocast to bfloat16

            def bf16_forward():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return model(pixel_values=images)
            with torch.no_grad():
                seconds = median_seconds(bf16_forward, repeats, warmup)
            rows.append(Timing("pytorch eager bf16 autocast", b, seconds, gflop))
        rows.append(_torch_int8_timing(int8_models, images, repeats, warmup, gflop))
    return rows


@contextlib.contextmanager
def _quantized_engine(engine: str):
    """PyTorch's quantised kernels set to `engine` inside the block, restored after."""
    import torch

    default = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        yield
    finally:
        torch.backends.quantized.engine = default


def _torch_int8_models(model) -> Dict[str, object]:
    """PyTorch's int8 for transformers on a CPU, for each of its x86 quantised engines here:
    engine -> a copy of `model` with every Linear dynamically quantised (int8 weights,
    activations quantised per batch)."""
    import torch

    models = {}
    for engine in ("x86", "onednn"):
        if engine in torch.backends.quantized.supported_engines:
            with _quantized_engine(engine), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao's notice that torchao succeeds it
                models[engine] = torch.ao.quantization.quantize_dynamic(
                    copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
    return models


def _torch_int8_timing(models: Dict[str, object], images, repeats: int, warmup: int,
                       gflop: float) -> Timing:
    """The int8 row: each of `models` (engine -> quantised model) timed on `images`; the
    faster is the row, the other named in its note."""
    import torch

    times = {}
    for engine, quantised in models.items():
        with _quantized_engine(engine), torch.no_grad():
            times[engine] = median_seconds(lambda: quantised(pixel_values=images),
                                           repeats, warmup)
    if not times:
        return Timing("pytorch eager int8 dynamic", len(images), None, gflop,
                      "this PyTorch has no x86 quantised engine")
    best = min(times, key=times.get)
    others = ", ".join(f"{engine} {seconds * 1000:.1f} ms" for engine, seconds in times.items()
                       if engine != best)
    return Timing("pytorch eager int8 dynamic", len(images), times[best], gflop,
                  f"{best} engine" + (f" ({others})" if others else ""))


def torch_step(model, images, labels, label_smoothing):
    """One training step of `model` on the fixed batch (label-smoothed cross-entropy, AdamW),
    as a function to time: the twin of Paddle's in `benchmark.py`."""
    import torch

    torch.set_num_threads(cpu.math_threads())
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    images, labels = torch.from_numpy(images), torch.from_numpy(labels).long()

    def step():
        logits = model(pixel_values=images).logits
        loss = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=label_smoothing)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    return step
