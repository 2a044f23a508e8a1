"""Deployment: a static inference model that Paddle Inference runs, with its preprocessing.

`export_inference_model` writes into a folder:
- `model.json` + `model.pdiparams` (or `model.pdmodel` on older Paddle): the graph from
  `paddle.jit.save`, with a dynamic batch dimension;
- `inference.yml`: the model name, the preprocessing record (image size, mean/std, resize
  settings, class names) and the training config (so `--eval` finds the data set), PaddleClas's
  idea;
- `model.safetensors`: the weights with the model's metadata, loadable without running code.
- with `--format onnx`, `model.onnx` too (onnx_export.py).
`InferenceModel` loads such a folder with `paddle.inference` (oneDNN on CPU, in float32 or, where
the CPU has native bfloat16, bf16), or its `model.onnx` with ONNX Runtime, and is a predictor
(inference.py): it predicts files and evaluates splits like the eager model.
"""

import json
import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import paddle
import yaml

from .. import cpu
from ..config import Config, config_from_dict
from ..data.preprocessing import Preprocessing
from ..errors import CheckpointError, ConfigError
from ..models import input_size
from ..serialization import save_safetensors
from .inference import LoadedModel
from .runtime import gpu_available

log = logging.getLogger(__name__)


FORMATS = ("paddle", "onnx")


def export_inference_model(loaded: LoadedModel, output_dir,
                           precision: str = "fp32", fmt: str = "paddle") -> dict:
    """Save `loaded` as a static inference model plus `inference.yml` and safetensors weights.

    Args:
        loaded: from `load_for_inference`.
        output_dir: the folder to write.
        precision: the precision `inference.yml` records as the one to run the model at
            (`tools/infer.py --precision` overrides it); the graph itself stays float32.
        fmt: `paddle`, or `onnx`: also `model.onnx`, converted from the Paddle graph and
            checked against the eager model (onnx_export.py).

    Returns:
        paths of the written files by name.
    """
    check_precision(precision)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format '{fmt}'", f"use one of {', '.join(FORMATS)}")
    if precision == "int8" and fmt != "onnx":
        raise ConfigError("--precision int8 is ONNX Runtime's static quantisation",
                          "add --format onnx")
    if fmt == "onnx":
        from .onnx_export import require_onnx

        require_onnx()  # before anything is written
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    channels = input_size(loaded.model)[0]
    size = loaded.preprocessing.image_size
    spec = [paddle.static.InputSpec([None, channels, size, size], "float32", "images")]
    paddle.jit.save(loaded.model, str(output_dir / "model"), input_spec=spec)
    info = {"model": loaded.meta["model"]["name"], "num_classes": loaded.num_classes,
            "precision": precision,
            "preprocessing": loaded.preprocessing.to_dict(),
            "source_checkpoint": str(loaded.weights), "config": loaded.config.to_dict()}
    paths = {}
    if fmt == "onnx":
        from .onnx_export import export_onnx

        info["onnx"] = export_onnx(output_dir, graph_file(output_dir), loaded.logits,
                                   (channels, size, size))
        paths["onnx"] = output_dir / info["onnx"]["file"]
        if precision == "int8":
            from ..data.sources import build_datasets
            from .onnx_export import quantize_onnx

            splits = build_datasets(loaded.config.data).splits  # read once, for both samples
            info["onnx"]["int8"] = quantize_onnx(
                output_dir, sample_images(loaded, splits, "train", CALIBRATION_IMAGES),
                sample_images(loaded, splits, "val", CHECK_IMAGES))
            paths["onnx_int8"] = output_dir / info["onnx"]["int8"]["file"]
    (output_dir / "inference.yml").write_text(yaml.safe_dump(info, sort_keys=False,
                                                             allow_unicode=True), encoding="utf-8")
    metadata = {"format": "vit-paddle", "model": json.dumps(loaded.meta["model"]),
                "preprocessing": json.dumps(loaded.preprocessing.to_dict())}
    weights = save_safetensors(loaded.model.state_dict(), output_dir / "model.safetensors", metadata)
    return {"folder": output_dir, "inference_yml": output_dir / "inference.yml",
            "graph": graph_file(output_dir), **paths, "safetensors": weights}


def sample_images(loaded: LoadedModel, splits, split: str, count: int,
                  seed: int = 0) -> np.ndarray:
    """Up to `count` readable images of `splits[split]` (the model's config's data set),
    seeded, preprocessed for the model's evaluation: [N, C, H, W] float32."""
    images = splits[split].with_transform(loaded.preprocessing.eval_transform())
    picked = []
    for index in np.random.default_rng(seed).permutation(len(images)):
        sample = images[int(index)]
        if isinstance(sample, tuple):  # not a skipped file
            picked.append(np.asarray(sample[0], dtype=np.float32))
        if len(picked) == count:
            break
    if not picked:
        raise ConfigError(f"the {split} split has no readable image to calibrate int8 with",
                          "check data.* of the config (-c/-o)")
    return np.stack(picked)


def graph_file(folder: Path) -> Path:
    """The static graph `paddle.jit.save` wrote into `folder` (its name depends on Paddle's
    version)."""
    for name in ("model.json", "model.pdmodel"):
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(f"{folder} holds no model.json or model.pdmodel",
                          "export the model with tools/export.py")


PRECISIONS = ("fp32", "bf16", "fp16", "int8")  # int8: ONNX Runtime's static quantisation
CALIBRATION_IMAGES = 32  # training images that set the int8 activation ranges
CHECK_IMAGES = 512  # validation images on which int8 is compared with float32


def check_precision(precision: str):
    """Raises ConfigError for a precision name that is not one of `PRECISIONS`."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision '{precision}'",
                          f"use one of {', '.join(PRECISIONS)}")


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), so oneDNN's bf16
    kernels are fast rather than emulated."""
    return bool(paddle.base.core.supports_bfloat16_fast_performance())


class PaddlePredictor:
    """A static graph run by Paddle Inference: oneDNN on CPU (fp32, or bf16 where the CPU has
    it natively), or the GPU (fp32, fp16, bf16).

    Args:
        graph, params: the files `paddle.jit.save` wrote.
        precision: one of `PRECISIONS`.
        num_threads: CPU math threads (0: those of Paddle's math, `cpu.math_threads`).

    Raises:
        ConfigError: a precision this machine cannot run.
    """

    def __init__(self, graph, params, precision: str = "fp32", num_threads: int = 0):
        import paddle.inference as inference

        check_precision(precision)
        settings = inference.Config(str(graph), str(params))
        settings.disable_glog_info()
        if precision == "int8":
            raise ConfigError("int8 runs on ONNX Runtime here, not Paddle Inference",
                              "run the folder with --onnx (model.int8.onnx), or pass "
                              "--precision fp32")
        if gpu_available():
            kinds = {"fp32": inference.PrecisionType.Float32, "fp16": inference.PrecisionType.Half,
                     "bf16": inference.PrecisionType.Bfloat16}
            settings.enable_use_gpu(256, 0, kinds[precision])
        else:
            if precision == "fp16":
                raise ConfigError("--precision fp16 needs a GPU", "use fp32 (or bf16 on a CPU "
                                  "with native bfloat16)")
            if precision == "bf16" and not native_bf16():
                raise ConfigError("--precision bf16 needs a CPU with native bfloat16 "
                                  "(AVX512-BF16 or AMX); this one has none",
                                  "use --precision fp32")
            settings.disable_gpu()
            settings.enable_mkldnn()  # oneDNN: the fast CPU path
            if precision == "bf16":
                settings.enable_mkldnn_bfloat16()
            settings.set_cpu_math_library_num_threads(num_threads or cpu.math_threads())
        self.precision = precision
        self.predictor = inference.create_predictor(settings)
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def logits(self, images) -> np.ndarray:
        """Outputs [B, K] for a preprocessed batch [B, C, H, W] (array or tensor)."""
        images = np.ascontiguousarray(np.asarray(images.numpy() if hasattr(images, "numpy")
                                                 else images, dtype=np.float32))
        self.input.reshape(list(images.shape))
        self.input.copy_from_cpu(images)
        self.predictor.run()
        cpu.restore_runtime_threads()
        return self.output.copy_to_cpu()


class InferenceModel:
    """An exported model run by Paddle Inference, as a predictor (inference.py).

    Args:
        folder: written by `export_inference_model`.
        num_threads: CPU math threads (0: those of Paddle's math, `cpu.math_threads`).
        config: replaces the training config recorded in `inference.yml` (data to evaluate on).
        overrides: `-o section.key=value` changes to the recorded config.
        precision: fp32, bf16 or fp16 (Paddle Inference), fp32 or int8 (ONNX Runtime); None:
            the one recorded at export (fp32 by default).
        runtime: `paddle` (Paddle Inference) or `onnx` (ONNX Runtime on `model.onnx`, or
            `model.int8.onnx` for int8).
    """

    def __init__(self, folder, num_threads: int = 0, config: Optional[Config] = None,
                 overrides: Sequence[str] = (), precision: Optional[str] = None,
                 runtime: str = "paddle"):
        self.folder = Path(folder)
        info_path = self.folder / "inference.yml"
        if not info_path.is_file():
            raise CheckpointError(f"{info_path} is missing", "give a folder written by "
                                  "tools/export.py")
        self.info = yaml.safe_load(info_path.read_text(encoding="utf-8"))
        self.preprocessing = Preprocessing.from_dict(self.info.get("preprocessing", self.info),
                                                     str(info_path))
        self._config = config
        if config is None and "config" in self.info:
            self._config = config_from_dict(self.info["config"], "export", str(info_path),
                                            overrides)
        if runtime == "onnx":
            from .onnx_export import ONNX_FILE, OnnxPredictor

            record = self.info.get("onnx", {})
            precision = precision or self.info.get("precision", "fp32")
            if precision == "int8" and "int8" not in record:
                raise ConfigError(f"{self.folder} holds no int8 model",
                                  "export it with --format onnx --precision int8")
            if precision not in ("fp32", "int8"):
                raise ConfigError(f"--precision {precision} is not an ONNX Runtime path here",
                                  "use fp32 or int8 with --onnx, or Paddle Inference "
                                  "(--inference-model) for bf16 and fp16")
            chosen = record["int8"]["file"] if precision == "int8" else record.get(
                "file", ONNX_FILE)
            self.runner = OnnxPredictor(self.folder / chosen, num_threads, precision)
        else:
            self.runner = PaddlePredictor(graph_file(self.folder),
                                          self.folder / "model.pdiparams",
                                          precision or self.info.get("precision", "fp32"),
                                          num_threads)

    @property
    def class_names(self):
        return list(self.preprocessing.class_names)

    @property
    def source(self) -> str:
        return str(self.folder)

    @property
    def config(self) -> Config:
        """The training config recorded at export (or the one given)."""
        if self._config is None:
            raise ConfigError(f"{self.folder / 'inference.yml'} records no training config, so "
                              "the data set to evaluate on is unknown", "pass -c CONFIG")
        return self._config

    @property
    def precision(self) -> str:
        return self.runner.precision

    def logits(self, images) -> np.ndarray:
        """Logits [B, K] for a preprocessed batch [B, C, H, W]."""
        return self.runner.logits(images)
