"""Optimizer and learning-rate schedule from the `optim` config (paddle.optimizer, .lr).

The schedule steps once per optimizer step: linear warmup from 0 to `lr`, then cosine, linear or
step decay (or constant). Weight decay skips biases, LayerNorm weights, the position embedding and
the class token, as the paper's code, timm and DeiT do.
"""

import paddle
from paddle.optimizer import lr as schedules

from ..config import OptimConfig
from ..errors import ConfigError, param


def total_steps(epochs: int, steps_per_epoch: int) -> int:
    return max(1, epochs * steps_per_epoch)


def warmup_steps(optim: OptimConfig, steps_per_epoch: int) -> int:
    return optim.warmup_steps or int(round(optim.warmup_epochs * steps_per_epoch))


def build_scheduler(optim: OptimConfig, epochs: int, steps_per_epoch: int):
    """The per-step learning-rate schedule."""
    total = total_steps(epochs, steps_per_epoch)
    warmup = warmup_steps(optim, steps_per_epoch)
    if warmup >= total:
        raise ConfigError(f"warmup of {warmup} steps is not shorter than the {total} training "
                          "steps", f"lower {param('optim.warmup_epochs')} or "
                          f"{param('optim.warmup_steps')}, or raise {param('train.epochs')}")
    decay = DECAYS[optim.schedule](optim, total - warmup, steps_per_epoch)
    if warmup:
        return schedules.LinearWarmup(decay, warmup_steps=warmup, start_lr=0.0, end_lr=optim.lr)
    if isinstance(decay, schedules.LRScheduler):
        return decay
    return schedules.LambdaDecay(optim.lr, lambda step: 1.0)  # constant, as a scheduler


# `optim.schedule` -> (optim config, decay steps, steps per epoch) -> the learning rate after
# warmup, a schedule or a constant; the names are `SCHEDULES` of vit/config/schema.py
DECAYS = {
    "cosine": lambda optim, steps, _: schedules.CosineAnnealingDecay(
        optim.lr, T_max=steps, eta_min=optim.min_lr),
    "linear": lambda optim, steps, _: schedules.PolynomialDecay(
        optim.lr, decay_steps=steps, end_lr=optim.min_lr, power=1.0),
    "step": lambda optim, _, per_epoch: schedules.StepDecay(
        optim.lr, step_size=max(1, optim.step_epochs * per_epoch), gamma=optim.step_gamma),
    "constant": lambda optim, _, __: optim.lr,
}


def _decays(name: str, parameter) -> bool:
    """Weight decay only on weight matrices and kernels."""
    return len(parameter.shape) > 1 and not name.endswith(("pos_embed", "cls_token"))


def layer_scales(model: paddle.nn.Layer, decay: float) -> dict:
    """Parameter name -> learning-rate factor of layer-wise decay (BEiT's and PaddleClas's rule):
    with L blocks, block i (from 0) gets decay^(L - i), the patch and position embeddings and
    the class token decay^(L + 1), the final norm, pre-logits and head 1.

    Raises:
        ConfigError: `decay` below 1 for a model without transformer blocks.
    """
    names = [name for name, _ in model.named_parameters()]
    if decay == 1.0:
        return {name: 1.0 for name in names}
    if not hasattr(model, "blocks"):
        raise ConfigError(f"optim.layer_decay needs a ViT, not {type(model).__name__}",
                          f"set {param('optim.layer_decay', '1.0')}")
    depth = len(model.blocks)

    def layer(name: str) -> int:
        if name.startswith(("cls_token", "pos_embed", "patch_embed.")):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        return depth + 1
    return {name: decay ** (depth + 1 - layer(name)) for name in names}


def build_optimizer(optim: OptimConfig, model: paddle.nn.Layer, scheduler):
    """AdamW, Adam or SGD with momentum over `model`'s parameters that learn (a frozen one has
    `stop_gradient`), with global-norm clipping and layer-wise learning-rate decay."""
    scales = layer_scales(model, optim.layer_decay)
    named = [(n, p) for n, p in model.named_parameters() if not p.stop_gradient]
    clip = paddle.nn.ClipGradByGlobalNorm(optim.grad_clip) if optim.grad_clip else None
    groups = {}  # (weight decay?, learning-rate factor) -> parameters
    for name, parameter in named:
        groups.setdefault((_decays(name, parameter), scales[name]), []).append(parameter)
    return OPTIMIZERS[optim.name](optim, named, groups, scheduler, clip)


def _adamw(optim: OptimConfig, named, groups: dict, scheduler, clip):
    """Decoupled weight decay, applied by parameter name."""
    decay_names = {p.name for n, p in named if _decays(n, p)}
    return paddle.optimizer.AdamW(
        learning_rate=scheduler, beta1=optim.beta1, beta2=optim.beta2,
        parameters=_lr_groups(groups, optim, with_decay=False),
        weight_decay=optim.weight_decay, grad_clip=clip,
        apply_decay_param_fun=lambda name: name in decay_names)


def _adam(optim: OptimConfig, named, groups: dict, scheduler, clip):
    return paddle.optimizer.Adam(learning_rate=scheduler, beta1=optim.beta1, beta2=optim.beta2,
                                 parameters=_lr_groups(groups, optim, with_decay=True),
                                 grad_clip=clip)


def _sgd(optim: OptimConfig, named, groups: dict, scheduler, clip):
    return paddle.optimizer.Momentum(learning_rate=scheduler, momentum=optim.momentum,
                                     parameters=_lr_groups(groups, optim, with_decay=True),
                                     grad_clip=clip)


# `optim.name` -> builder; the names are `OPTIMIZERS` of vit/config/schema.py
OPTIMIZERS = {"adamw": _adamw, "adam": _adam, "sgd": _sgd}


def _lr_groups(groups: dict, optim: OptimConfig, with_decay: bool):
    """Paddle parameter groups: a plain list when nothing differs by group (AdamW decays by
    name), else dicts with the learning-rate factor and, for Adam and SGD, the L2 decay."""
    if not with_decay and all(scale == 1.0 for _, scale in groups):
        return [parameter for params in groups.values() for parameter in params]
    return [{"params": params, "learning_rate": scale,
             **({"weight_decay": optim.weight_decay if decays else 0.0} if with_decay else {})}
            for (decays, scale), params in groups.items()]

