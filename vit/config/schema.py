"""The configuration schema: every key of a run, its type, default, meaning and allowed values.

One declaration per key (`_key`) feeds validation (`loading.py`), the `-o` error messages and
docs/configs.md. The dataclasses are frozen: nothing writes back into a `Config`; derived values
(number of classes, steps per epoch) are return values recorded in the run folder.
"""

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Optional, Tuple, Union

from ..errors import ConfigError, param

OPTIMIZERS = ("adamw", "adam", "sgd")  # and the schedules: vit/engine/optim.py's keys
SCHEDULES = ("cosine", "linear", "step", "constant")
# What a model's outputs mean: one class per image (softmax), or labels (a sigmoid each).
TASKS = ("multiclass", "multilabel")
SAMPLERS = ("random", "balanced")  # how training batches are drawn (vit/data/sampler.py)
CLASS_WEIGHTINGS = ("none", "balanced")  # `train.class_weights` besides a list of numbers
BEST_BY = ("auto", "top1", "balanced_accuracy", "map")  # what picks the best checkpoint


def _key(default, help: str, choices: Optional[Tuple] = None):
    """A config key: its default, one line for docs/configs.md, and its allowed values."""
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default),
                     metadata={"help": help, "choices": choices})
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class ModelConfig:
    name: str = _key("ViT_tiny_patch4_16", "registered model name (`vit-summary --list`)")
    pretrained: Optional[str] = _key(None, "weights to start from: a published name "
                                           "`Name[.tag]` (`vit-convert --list`), a weights file "
                                           "or folder, or a URL; null trains from scratch")
    drop_rate: float = _key(0.0, "dropout after the position embedding, attention "
                                 "projection and in the MLP")
    attn_drop_rate: float = _key(0.0, "dropout on the attention weights")
    drop_path_rate: float = _key(0.0, "stochastic depth of the last block (rises linearly "
                                      "from 0 over depth)")
    zero_head: bool = _key(False, "start the classifier from zeros (the paper's fine-tuning)")


@dataclass(frozen=True)
class DataConfig:
    # the names live in one place, the data-source registry (vit/data/sources.py)
    source: str = _key("digits", "where the images come from (`vit.data.source_names()`)")
    root: Optional[str] = _key(None, "folder of the data set (folder, list) or cache folder "
                                     "(downloaded and generated sources; default "
                                     "data/<source>)")
    archive: Optional[str] = _key(None, "local archive of a paddle.vision data set, used "
                                        "instead of downloading")
    download: bool = _key(True, "download a missing archive of a paddle.vision data set")
    url: Optional[str] = _key(None, "base URL of a mirror holding the paddle.vision files "
                                    "under their official names; null: Paddle's servers")
    train_list: Optional[str] = _key(None, "list source: file of `path label` lines, relative "
                                           "to root")
    val_list: Optional[str] = _key(None, "list source: validation list file")
    test_list: Optional[str] = _key(None, "list source: test list file")
    label_names: Optional[str] = _key(None, "list source: file with one class name per line "
                                            "(line i names label i)")
    task: str = _key("multiclass", "multiclass: one class per image (softmax); multilabel: any "
                                   "number of labels per image (a sigmoid each)", TASKS)
    sampler: str = _key("random", "training order: random (a seeded permutation) or balanced "
                                  "(classes drawn equally often, images with replacement)",
                        SAMPLERS)
    epoch_fraction: float = _key(1.0, "passes over the training split per epoch (0.2: five "
                                      "epochs, five evaluations, per pass; the order runs on)")
    cut_classes: Tuple[str, ...] = _key((), "classes (by name) whose training images are cut "
                                            "to data.cut_fraction (val and test stay whole)")
    cut_fraction: float = _key(0.1, "share of each of data.cut_classes kept in training")
    fractal_classes: int = _key(100, "fractals source: classes, each a random iterated "
                                     "function system")
    fractal_per_class: int = _key(100, "fractals source: images rendered per class")
    fractal_size: int = _key(32, "fractals source: side of the rendered images in pixels")
    fractal_seed: int = _key(0, "fractals source: seed of the classes and their images")
    val_fraction: float = _key(0.1, "share of the data held out for validation when the "
                                    "source has no val split")
    test_fraction: float = _key(0.2, "share held out for testing when the source has no "
                                     "test split")
    split_seed: int = _key(0, "seed of the stratified split (fixed, so runs share a split)")
    train_fraction: float = _key(1.0, "use this share of the training split (stratified), for "
                                      "data-scaling experiments")
    image_size: Optional[int] = _key(None, "side of the model's square input; null: the "
                                           "model's own size")
    batch_size: int = _key(128, "images per training step (per device)")
    eval_batch_size: Optional[int] = _key(None, "images per evaluation step; null: batch_size")
    num_workers: int = _key(0, "DataLoader worker processes (0 loads in the main process)")
    max_image_pixels: int = _key(89_478_485, "images with more pixels are skipped as "
                                             "decompression bombs (Pillow's own limit)")
    verify_images: bool = _key(True, "decode every image file once when the data set is "
                                     "built, so unusable files are listed up front; false "
                                     "reads headers only (faster on large sets)")
    stats_max_images: int = _key(5000, "per split, the most images decoded for channel "
                                       "mean/std in the data report (a seeded sample)")


@dataclass(frozen=True)
class AugmentConfig:
    mean: Union[Tuple[float, ...], str] = _key((0.5, 0.5, 0.5), "per-channel mean for "
                                               "normalisation, or 'dataset' to compute it")
    std: Union[Tuple[float, ...], str] = _key((0.5, 0.5, 0.5), "per-channel std, or 'dataset'")
    interpolation: str = _key("bilinear", "resampling filter for resizing",
                              ("nearest", "bilinear", "bicubic"))
    random_resized_crop: bool = _key(False, "train: random crop of scale x aspect, resized")
    crop_scale: Tuple[float, ...] = _key((0.08, 1.0), "train: area range of the random crop")
    crop_padding: int = _key(0, "train: pad each side by this many pixels (black) and crop "
                                "image_size back at a random place: random shifts (0: off)")
    hflip: float = _key(0.0, "train: probability of a horizontal flip")
    rand_augment_n: int = _key(0, "train: RandAugment operations per image (0: off)")
    rand_augment_m: int = _key(9, "train: RandAugment magnitude, 0-10")
    crop_pct: float = _key(1.0, "eval: resize to image_size / crop_pct, then center-crop")
    mixup_alpha: float = _key(0.0, "batch: Mixup beta(alpha, alpha) strength (0: off)")
    cutmix_alpha: float = _key(0.0, "batch: CutMix beta(alpha, alpha) strength (0: off)")
    mix_prob: float = _key(1.0, "batch: probability of mixing a batch when Mixup/CutMix is on")
    label_smoothing: float = _key(0.0, "loss: label smoothing epsilon")


@dataclass(frozen=True)
class OptimConfig:
    name: str = _key("adamw", "optimizer", OPTIMIZERS)
    lr: float = _key(1e-3, "peak learning rate (after warmup)")
    weight_decay: float = _key(0.05, "decoupled (adamw) or L2 (adam, sgd) weight decay")
    momentum: float = _key(0.9, "sgd momentum")
    beta1: float = _key(0.9, "adam/adamw beta1")
    beta2: float = _key(0.999, "adam/adamw beta2")
    grad_clip: Optional[float] = _key(None, "clip gradients to this global norm; null: off")
    schedule: str = _key("cosine", "learning-rate decay after warmup", SCHEDULES)
    warmup_epochs: float = _key(0.0, "linear warmup length in epochs")
    warmup_steps: int = _key(0, "linear warmup length in steps (wins over warmup_epochs)")
    min_lr: float = _key(0.0, "cosine/linear: learning rate at the end")
    step_epochs: int = _key(30, "step: decay every this many epochs")
    step_gamma: float = _key(0.1, "step: decay factor")
    layer_decay: float = _key(1.0, "layer-wise learning-rate decay (ViT): block i of L learns "
                                   "at lr x decay^(L - i), the embeddings at decay^(L + 1), the "
                                   "head at lr; 1.0: off")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _key(30, "passes over the training split")
    accum_steps: int = _key(1, "gradient accumulation: optimizer step every N batches")
    amp: str = _key("off", "mixed precision on GPU", ("off", "fp16", "bf16"))
    ema_decay: Optional[float] = _key(None, "keep an exponential moving average of the "
                                            "weights (e.g. 0.9999); null: off")
    seed: int = _key(42, "seed of weights, shuffling and augmentation")
    eval_every: int = _key(1, "evaluate on val every N epochs (and after the last)")
    log_every: int = _key(10, "log training scalars every N steps")
    resume: Optional[str] = _key(None, "checkpoint (or run folder) to resume from")
    device: str = _key("auto", "where to train", ("auto", "cpu", "gpu"))
    num_threads: int = _key(0, "CPU threads for Paddle's math (0: all cores)")
    recompute: bool = _key(False, "recompute each block's activations in the backward pass "
                                  "(saves memory, costs a forward)")
    freeze: str = _key("none", "backbone: only the head (and a pre-logits layer) learn, the "
                               "paper's linear evaluation", ("none", "backbone"))
    cache_features: bool = _key(True, "with a frozen backbone and no augmentation of the "
                                      "images, compute their features once and train the head "
                                      "on them")
    keep_checkpoints: int = _key(2, "the newest epoch checkpoints kept (`best`, and an "
                                    "`interrupted` one, are kept besides)")
    compare_with: Tuple[str, ...] = _key((), "earlier run folders to draw in the comparison "
                                             "plot")
    class_weights: Union[Tuple[float, ...], str] = _key(
        "none", "loss weight of each class: none, balanced (inverse class frequency in the "
                "training split, mean weight 1 over its images; multilabel: each label's "
                "negatives / positives as BCE positive weight) or a list, one per class")
    select_best_by: str = _key("auto", "validation figure that picks the best checkpoint "
                                       "(auto: top1, or map for multilabel)", BEST_BY)


@dataclass(frozen=True)
class OutputConfig:
    dir: str = _key("output", "folder that holds the run folders")
    run_name: Optional[str] = _key(None, "run folder name; null: <config name>-<date-time>")


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    name: str = "default"  # the config file's stem, used to name runs
    # the `section.key`s the file or an override set (the rest are the schema's defaults), so
    # that a default can give way to what published weights need (their preprocessing)
    given: frozenset = field(default=frozenset(), compare=False)

    def to_dict(self) -> dict:
        """The config as plain YAML-ready data (lists, not tuples), without `name`, `given`."""
        return {section: to_plain(dataclasses.asdict(getattr(self, section)))
                for section in SECTIONS}


def to_plain(value):
    """Tuples to lists, recursively: data that YAML and JSON write as they read it back."""
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


SECTIONS = {name: hint for name, hint in typing.get_type_hints(Config).items()
            if name not in ("name", "given")}


def all_keys():
    """Every valid `section.key`, in declaration order."""
    return [f"{section}.{f.name}" for section, cls in SECTIONS.items()
            for f in dataclasses.fields(cls)]


def check_config(config: Config):
    """Refuse values that are each well-typed but impossible together (ConfigError)."""
    _check_data(config.data)
    _check_schedule(config.optim, config.train)
    _check_augment(config.augment)
    _check_task(config.data, config.train)


def _check_data(data: DataConfig):
    _require(0 <= data.val_fraction < 1 and 0 <= data.test_fraction < 1
             and data.val_fraction + data.test_fraction < 1,
             f"data.val_fraction ({data.val_fraction}) + data.test_fraction "
             f"({data.test_fraction}) must leave some images for training",
             "keep both in [0, 1) with a sum below 1")
    _require(0 < data.train_fraction <= 1, f"data.train_fraction must be in (0, 1], got "
             f"{data.train_fraction}", "use 1.0 for the whole training split")
    for key in ("batch_size", "max_image_pixels", "stats_max_images", "fractal_classes",
                "fractal_per_class"):
        _require(getattr(data, key) >= 1, f"data.{key} must be at least 1")
    _require(data.num_workers >= 0, "data.num_workers must be 0 or more")
    _require(data.image_size is None or data.image_size >= 1, "data.image_size must be positive")
    _require(data.fractal_size >= 4, f"data.fractal_size must be at least 4: {data.fractal_size}")


def _check_schedule(optim: OptimConfig, train: TrainConfig):
    """The optimizer, its schedule and the training loop's counts."""
    for key in ("epochs", "accum_steps", "eval_every", "log_every"):
        _require(getattr(train, key) >= 1, f"train.{key} must be at least 1, got "
                 f"{getattr(train, key)}")
    _require(optim.lr > 0, f"optim.lr must be positive, got {optim.lr}")
    _require(optim.warmup_steps > 0 or optim.warmup_epochs < train.epochs,
             f"optim.warmup_epochs ({optim.warmup_epochs:g}) must be shorter than train.epochs "
             f"({train.epochs})",
             f"lower {param('optim.warmup_epochs')} or raise {param('train.epochs')}")
    _require(train.ema_decay is None or 0 < train.ema_decay < 1,
             f"train.ema_decay must be in (0, 1), got {train.ema_decay}", "e.g. 0.9999, or null")
    _require(optim.schedule != "step" or 0 < optim.step_gamma < 1,
             f"optim.step_gamma must be in (0, 1), got {optim.step_gamma}")
    _require(0 < optim.layer_decay <= 1, f"optim.layer_decay must be in (0, 1], got "
             f"{optim.layer_decay}", "e.g. 0.65 (BEiT), 0.75; 1.0 turns it off")


def _check_augment(augment: AugmentConfig):
    for key in ("mean", "std"):
        value = getattr(augment, key)
        _require(value == "dataset" or (isinstance(value, tuple) and len(value) in (1, 3)),
                 f"augment.{key} must be 1 or 3 numbers or 'dataset', got {value!r}")
    _require(len(augment.crop_scale) == 2 and 0 < augment.crop_scale[0] <= augment.crop_scale[1] <= 1,
             f"augment.crop_scale must be [min, max] within (0, 1], got {list(augment.crop_scale)}")
    _require(augment.std == "dataset" or min(augment.std) > 0,
             f"augment.std must be positive, got {list(augment.std)}")
    _require(augment.crop_padding >= 0, f"augment.crop_padding must be 0 or more, got "
             f"{augment.crop_padding}")
    _require(0 < augment.crop_pct <= 1, f"augment.crop_pct must be in (0, 1], got "
             f"{augment.crop_pct}")
    _require(0 <= augment.label_smoothing < 1, "augment.label_smoothing must be in [0, 1)")


def _check_task(data: DataConfig, train: TrainConfig):
    """The choices that depend on what the outputs mean."""
    weights = train.class_weights
    _require(not isinstance(weights, str) or weights in CLASS_WEIGHTINGS,
             f"train.class_weights must be {', '.join(CLASS_WEIGHTINGS)} or a list of numbers, "
             f"got {weights!r}", "e.g. balanced, or [1, 1, 5] (one weight per class)")
    _require(isinstance(weights, str) or (len(weights) and min(weights) > 0),
             f"train.class_weights must be positive, got {list(weights)}")
    meaningless = {"multiclass": ("map",), "multilabel": ("top1", "balanced_accuracy")}
    _require(train.select_best_by not in meaningless[data.task],
             f"{param('train.select_best_by', train.select_best_by)} has no meaning for "
             f"{param('data.task', data.task)}",
             f"use {param('train.select_best_by', 'map' if data.task == 'multilabel' else 'top1')}")
    _require(not (data.task == "multilabel" and data.sampler == "balanced"),
             f"{param('data.sampler', 'balanced')} draws by class and has no meaning for "
             f"{param('data.task', 'multilabel')}",
             f"use {param('train.class_weights', 'balanced')} (BCE positive weights)")
    _require(0 < data.cut_fraction <= 1, f"data.cut_fraction must be in (0, 1], got "
             f"{data.cut_fraction}")
    _require(0 < data.epoch_fraction < float("inf"), "data.epoch_fraction must be a positive "
             f"number, got {data.epoch_fraction}")


def _require(condition: bool, message: str, hint: str = ""):
    if not condition:
        raise ConfigError(message, hint)
