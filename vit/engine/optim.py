"""Optimizer and learning-rate schedule from the `optim` config (paddle.optimizer, .lr).

The schedule steps once per optimizer step: linear warmup from 0 to `lr`, then cosine, linear or
step decay (or constant). Weight decay skips biases, LayerNorm weights, the position embedding and
the class token, as the paper's code, timm and DeiT do.
"""

import paddle
from paddle.optimizer import lr as schedules

from ..config import OptimConfig
from ..errors import ConfigError


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
                          "steps", "lower optim.warmup_epochs/warmup_steps or raise train.epochs")
    decay_steps = total - warmup
    if optim.schedule == "cosine":
        decay = schedules.CosineAnnealingDecay(optim.lr, T_max=decay_steps, eta_min=optim.min_lr)
    elif optim.schedule == "linear":
        decay = schedules.PolynomialDecay(optim.lr, decay_steps=decay_steps, end_lr=optim.min_lr,
                                          power=1.0)
    elif optim.schedule == "step":
        decay = schedules.StepDecay(optim.lr, step_size=max(1, optim.step_epochs * steps_per_epoch),
                                    gamma=optim.step_gamma)
    else:
        decay = optim.lr
    if warmup == 0:
        if isinstance(decay, schedules.LRScheduler):
            return decay
        return schedules.LambdaDecay(optim.lr, lambda step: 1.0)  # constant, as a scheduler
    return schedules.LinearWarmup(decay, warmup_steps=warmup, start_lr=0.0, end_lr=optim.lr)


def _decays(name: str, param) -> bool:
    """Weight decay only on weight matrices and kernels."""
    return len(param.shape) > 1 and not name.endswith(("pos_embed", "cls_token"))


def build_optimizer(optim: OptimConfig, model: paddle.nn.Layer, scheduler):
    """AdamW, Adam or SGD with momentum over `model`'s parameters, with global-norm clipping."""
    named = list(model.named_parameters())
    decay = [p for n, p in named if not p.stop_gradient and _decays(n, p)]
    no_decay = [p for n, p in named if not p.stop_gradient and not _decays(n, p)]
    clip = paddle.nn.ClipGradByGlobalNorm(optim.grad_clip) if optim.grad_clip else None
    if optim.name == "adamw":
        decay_names = {p.name for p in decay}
        return paddle.optimizer.AdamW(
            learning_rate=scheduler, beta1=optim.beta1, beta2=optim.beta2,
            parameters=decay + no_decay, weight_decay=optim.weight_decay, grad_clip=clip,
            apply_decay_param_fun=lambda name: name in decay_names)
    groups = [{"params": decay, "weight_decay": optim.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    groups = [group for group in groups if group["params"]]
    if optim.name == "adam":
        return paddle.optimizer.Adam(learning_rate=scheduler, beta1=optim.beta1,
                                     beta2=optim.beta2, parameters=groups, grad_clip=clip)
    return paddle.optimizer.Momentum(learning_rate=scheduler, momentum=optim.momentum,
                                     parameters=groups, grad_clip=clip)

