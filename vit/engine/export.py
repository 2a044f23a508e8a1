"""Deployment: a static inference model that Paddle Inference runs, with its preprocessing.

`export_inference_model` writes into a folder:
- `model.json` + `model.pdiparams` (or `model.pdmodel` on older Paddle): the graph from
  `paddle.jit.save`, with a dynamic batch dimension;
- `inference.yml`: the model record (model_record.py: name, arguments, preprocessing), the
  precision to run at and the training config (so an evaluation finds the data set),
  PaddleClas's idea;
- `model.safetensors`: the weights with the model record in its metadata, loadable without
  running code (and by `load_published`);
- in the ONNX format, `model.onnx` too (onnx_export.py).
The export runs as steps: `check_export` (before anything is written), `save_graph`,
`export_onnx_beside`, then `inference.yml` and the safetensors weights.
`InferenceModel` loads such a folder with `paddle.inference` (oneDNN on CPU, in float32 or, where
the CPU has native bfloat16, bf16), or its `model.onnx` with ONNX Runtime, and is a predictor
(inference.py): it predicts files and evaluates splits like the eager model.
"""

import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import paddle
import yaml

from ..config import Config, config_from_dict
from ..data.preprocessing import Preprocessing
from ..errors import CheckpointError, ConfigError, param
from ..files import write_text_atomic
from ..models import input_size
from ..serialization import save_safetensors
from .inference import LoadedModel
from .onnx_export import ONNX_FILE
from .openvino_export import IR_FILE
from .paddle_predictor import PaddlePredictor, check_precision
from .model_record import read_model_record, safetensors_metadata

log = logging.getLogger(__name__)


# onnx: the Paddle files and model.onnx beside them; openvino: and OpenVINO's IR from it
FORMATS = ("paddle", "onnx", "openvino")
RUNTIMES = FORMATS  # each format's model runs on the runtime of its name
CALIBRATION_IMAGES = 32  # training images that set the int8 activation ranges
CHECK_IMAGES = 512  # validation images on which int8 is compared with float32
INFO_FILE = "inference.yml"
# the file that stands for an export folder's model on each runtime
SERVED_BY = {INFO_FILE: "paddle", ONNX_FILE: "onnx", IR_FILE: "openvino"}


def export_inference_model(loaded: LoadedModel, output_dir,
                           precision: str = "fp32", fmt: str = "paddle") -> dict:
    """Save `loaded` as a static inference model plus `inference.yml` and safetensors weights.

    Args:
        loaded: from `load_for_inference`.
        output_dir: the folder to write.
        precision: the precision `inference.yml` records as the one to run the model at
            (`InferenceModel`'s `precision` overrides it); the graph itself stays float32.
        fmt: `paddle`; `onnx`: also `model.onnx`, converted from the Paddle graph and
            checked against the eager model (onnx_export.py); `openvino`: also OpenVINO's IR
            `model.xml`, converted from `model.onnx` and checked the same way
            (openvino_export.py). int8 is quantised by the runtime the format names.

    Returns:
        paths of the written files by name.
    """
    check_export(precision, fmt)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {"folder": output_dir, "graph": save_graph(loaded, output_dir)}
    info = {"model": loaded.record.to_dict(), "precision": precision,
            "source_checkpoint": str(loaded.weights), "config": loaded.config.to_dict()}
    if fmt in ("onnx", "openvino"):  # OpenVINO's IR is converted from model.onnx
        info["onnx"] = export_onnx_beside(loaded, output_dir,
                                          precision if fmt == "onnx" else "fp32")
    if fmt == "openvino":
        info["openvino"] = export_openvino_beside(loaded, output_dir, precision)
    for runtime in ("onnx", "openvino"):
        if runtime in info:
            paths[runtime] = output_dir / info[runtime]["file"]
            if "int8" in info[runtime]:
                paths[f"{runtime}_int8"] = output_dir / info[runtime]["int8"]["file"]
    paths["inference_yml"] = output_dir / INFO_FILE
    write_text_atomic(paths["inference_yml"], yaml.safe_dump(info, sort_keys=False,
                                                             allow_unicode=True))
    paths["safetensors"] = save_safetensors(loaded.model.state_dict(),
                                            output_dir / "model.safetensors",
                                            safetensors_metadata(loaded.record))
    return paths


def check_export(precision: str, fmt: str):
    """Refuse what cannot be exported before anything is written: an unknown precision or
    format, int8 without a runtime that quantises, a format without its packages.

    Raises:
        ConfigError: naming the parameter.
    """
    check_precision(precision)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export {param('fmt')} '{fmt}'",
                          f"use one of {', '.join(FORMATS)}")
    if precision == "int8" and fmt == "paddle":
        raise ConfigError(f"{param('precision', 'int8')} is quantised by ONNX Runtime or "
                          "OpenVINO", f"export with {param('fmt', 'onnx')} or "
                          f"{param('fmt', 'openvino')}")
    if fmt in ("onnx", "openvino"):
        from .onnx_export import require_onnx

        require_onnx()
    if fmt == "openvino":
        from .openvino_export import require_nncf, require_openvino

        require_openvino()
        if precision == "int8":
            require_nncf()


def save_graph(loaded: LoadedModel, output_dir: Path) -> Path:
    """The static graph of `loaded.model` (`paddle.jit.save`), with a dynamic batch size."""
    channels = input_size(loaded.model)[0]
    size = loaded.preprocessing.image_size
    spec = [paddle.static.InputSpec([None, channels, size, size], "float32", "images")]
    paddle.jit.save(loaded.model, str(output_dir / "model"), input_spec=spec)
    return graph_file(output_dir)


def export_onnx_beside(loaded: LoadedModel, output_dir: Path, precision: str) -> dict:
    """`model.onnx` from the saved graph, checked against the eager model, and for int8
    `model.int8.onnx`, calibrated on training images of the config's data set; returns what
    `inference.yml` records under `onnx`."""
    from .onnx_export import export_onnx, quantize_onnx

    prep = loaded.preprocessing
    size = prep.image_size
    record = export_onnx(output_dir, graph_file(output_dir), loaded.logits,
                         (input_size(loaded.model)[0], size, size))
    if precision == "int8":
        record["int8"] = quantize_onnx(output_dir, *int8_samples(loaded), prep.multilabel,
                                       prep.thresholds)
    return record


def export_openvino_beside(loaded: LoadedModel, output_dir: Path, precision: str) -> dict:
    """OpenVINO's IR `model.xml` from `model.onnx`, checked against the eager model, and for
    int8 `model.int8.xml` (NNCF), calibrated on training images of the config's data set;
    returns what `inference.yml` records under `openvino`."""
    from .openvino_export import export_openvino, quantize_openvino

    prep = loaded.preprocessing
    size = prep.image_size
    record = export_openvino(output_dir, output_dir / ONNX_FILE, loaded.logits,
                             (input_size(loaded.model)[0], size, size))
    if precision == "int8":
        record["int8"] = quantize_openvino(output_dir, *int8_samples(loaded),
                                           prep.multilabel, prep.thresholds)
    return record


def int8_samples(loaded: LoadedModel):
    """(calibration images from the training split, images to check int8 against float32 on
    from the validation split) of the config's data set."""
    from ..data.sources import build_datasets

    splits = build_datasets(loaded.config.data).splits  # read once, for both samples
    return (sample_images(loaded, splits, "train", CALIBRATION_IMAGES),
            sample_images(loaded, splits, "val", CHECK_IMAGES))


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
                          f"check data.* of the {param('config')}")
    return np.stack(picked)


def graph_file(folder: Path) -> Path:
    """The static graph `paddle.jit.save` wrote into `folder` (its name depends on Paddle's
    version)."""
    for name in ("model.json", "model.pdmodel"):
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(f"{folder} holds no model.json or model.pdmodel",
                          "export the model again")


class InferenceModel:
    """An exported model run by Paddle Inference, as a predictor (inference.py).

    Args:
        folder: written by `export_inference_model`.
        num_threads: CPU math threads (0: those of Paddle's math, `cpu.math_threads`).
        config: replaces the training config recorded in `inference.yml` (data to evaluate on).
        overrides: `-o section.key=value` changes to the recorded config.
        precision: fp32, bf16 or fp16 (Paddle Inference), fp32 or int8 (ONNX Runtime), fp32,
            bf16 or int8 (OpenVINO); None: the one recorded at export (fp32 by default).
        runtime: one of `RUNTIMES`: `paddle` (Paddle Inference), `onnx` (ONNX Runtime on
            `model.onnx`, or `model.int8.onnx` for int8) or `openvino` (OpenVINO on
            `model.xml`, or `model.int8.xml` for int8).
    """

    def __init__(self, folder, num_threads: int = 0, config: Optional[Config] = None,
                 overrides: Sequence[str] = (), precision: Optional[str] = None,
                 runtime: str = "paddle"):
        self.folder = Path(folder)
        info_path = self.folder / INFO_FILE
        if not info_path.is_file():
            raise CheckpointError(f"{info_path} is missing",
                                  "give a folder written by the export")
        self.info = yaml.safe_load(info_path.read_text(encoding="utf-8"))
        self.record = read_model_record(self.info, str(info_path))
        self._config = config
        if config is None and "config" in self.info:
            self._config = config_from_dict(self.info["config"], "export", str(info_path),
                                            overrides)
        if runtime not in RUNTIMES:
            raise ConfigError(f"unknown {param('runtime')} '{runtime}'",
                              f"use one of {', '.join(RUNTIMES)}")
        precision = precision or self.info.get("precision", "fp32")
        runner = {"paddle": self._paddle_runner, "onnx": self._onnx_runner,
                  "openvino": self._openvino_runner}[runtime]
        self.runner = runner(precision, num_threads)

    def _paddle_runner(self, precision: str, num_threads: int):
        return PaddlePredictor(graph_file(self.folder), self.folder / "model.pdiparams",
                               precision, num_threads)

    def _onnx_runner(self, precision: str, num_threads: int):
        """ONNX Runtime on `model.onnx`, or on `model.int8.onnx` for int8."""
        from .onnx_export import ONNX_FILE, OnnxPredictor

        record = self.info.get("onnx", {})
        if precision == "int8" and "int8" not in record:
            raise ConfigError(f"{self.folder} holds no int8 model", "export it with "
                              f"{param('fmt', 'onnx')} and {param('precision', 'int8')}")
        if precision not in ("fp32", "int8"):
            raise ConfigError(f"{param('precision', precision)} is not an ONNX Runtime path "
                              f"here", f"use fp32 or int8 with {param('runtime', 'onnx')}, or "
                              f"Paddle Inference ({param('runtime', 'paddle')}) for bf16 and fp16")
        chosen = record["int8"]["file"] if precision == "int8" else record.get("file", ONNX_FILE)
        return OnnxPredictor(self.folder / chosen, num_threads, precision)

    def _openvino_runner(self, precision: str, num_threads: int):
        """OpenVINO on `model.xml`, or on `model.int8.xml` for int8."""
        from .openvino_export import OpenvinoPredictor

        record = self.info.get("openvino")
        if record is None:
            raise ConfigError(f"{self.folder} holds no OpenVINO model",
                              f"export it with {param('fmt', 'openvino')}")
        if precision == "int8" and "int8" not in record:
            raise ConfigError(f"{self.folder} holds no int8 OpenVINO model", "export it with "
                              f"{param('fmt', 'openvino')} and {param('precision', 'int8')}")
        if precision not in ("fp32", "bf16", "int8"):
            raise ConfigError(f"{param('precision', precision)} is not an OpenVINO path here",
                              "use fp32, bf16 or int8")
        chosen = record["int8"]["file"] if precision == "int8" else record["file"]
        return OpenvinoPredictor(self.folder / chosen, num_threads, precision)

    @property
    def preprocessing(self) -> Preprocessing:
        return self.record.preprocessing

    @property
    def class_names(self):
        return self.record.class_names

    @property
    def source(self) -> str:
        return str(self.folder)

    @property
    def config(self) -> Config:
        """The training config recorded at export (or the one given)."""
        if self._config is None:
            raise ConfigError(f"{self.folder / INFO_FILE} records no training config, so "
                              "the data set to evaluate on is unknown",
                              f"give a {param('config')}")
        return self._config

    @property
    def precision(self) -> str:
        return self.runner.precision

    def logits(self, images) -> np.ndarray:
        """Logits [B, K] for a preprocessed batch [B, C, H, W]."""
        return self.runner.logits(images)
