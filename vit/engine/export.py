"""Deployment: a static inference model that Paddle Inference runs, with its preprocessing.

`export_inference_model` writes into a folder:
- `model.json` + `model.pdiparams` (or `model.pdmodel` on older Paddle): the graph from
  `paddle.jit.save`, with a dynamic batch dimension;
- `inference.yml`: image size, mean/std, resize settings and class names (PaddleClas's idea);
- `model.safetensors`: the weights with the model's metadata, loadable without running code.
`InferenceModel` loads such a folder with `paddle.inference` (oneDNN on CPU) and predicts files
with the same preprocessing as evaluation.
"""

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import paddle
import yaml

from ..config import AugmentConfig
from ..data.transforms import build_transforms
from ..errors import CheckpointError
from ..serialization import save_safetensors
from .inference import LoadedModel, collect_image_paths, predict_files

log = logging.getLogger(__name__)


def export_inference_model(loaded: LoadedModel, output_dir) -> dict:
    """Save `loaded` as a static inference model plus `inference.yml` and safetensors weights.

    Returns:
        paths of the written files by name.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    channels = loaded.model.patch_embed.proj.weight.shape[1]
    spec = [paddle.static.InputSpec([None, channels, loaded.image_size, loaded.image_size],
                                    "float32", "images")]
    paddle.jit.save(loaded.model, str(output_dir / "model"), input_spec=spec)
    info = {"model": loaded.meta["model"]["name"], "num_classes": loaded.num_classes,
            **loaded.preprocessing(), "source_checkpoint": str(loaded.weights)}
    (output_dir / "inference.yml").write_text(yaml.safe_dump(info, sort_keys=False,
                                                             allow_unicode=True), encoding="utf-8")
    metadata = {"format": "vit-paddle", "model": json.dumps(loaded.meta["model"]),
                "class_names": json.dumps(loaded.class_names),
                "image_size": str(loaded.image_size), "mean": json.dumps(loaded.mean),
                "std": json.dumps(loaded.std)}
    weights = save_safetensors(loaded.model.state_dict(), output_dir / "model.safetensors", metadata)
    return {"folder": output_dir, "inference_yml": output_dir / "inference.yml",
            "graph": _graph_file(output_dir), "safetensors": weights}


def _graph_file(folder: Path) -> Path:
    for name in ("model.json", "model.pdmodel"):
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(f"{folder} holds no model.json or model.pdmodel",
                          "export the model with tools/export.py")


class InferenceModel:
    """An exported model run by Paddle Inference (`paddle.inference.create_predictor`)."""

    def __init__(self, folder, num_threads: int = 0):
        import os

        import paddle.inference as inference

        self.folder = Path(folder)
        info_path = self.folder / "inference.yml"
        if not info_path.is_file():
            raise CheckpointError(f"{info_path} is missing", "give a folder written by "
                                  "tools/export.py")
        self.info = yaml.safe_load(info_path.read_text(encoding="utf-8"))
        config = inference.Config(str(_graph_file(self.folder)), str(self.folder / "model.pdiparams"))
        config.disable_glog_info()
        if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
            config.enable_use_gpu(256, 0)
        else:
            config.disable_gpu()
            config.enable_mkldnn()  # oneDNN: the fast CPU path
            config.set_cpu_math_library_num_threads(num_threads or len(os.sched_getaffinity(0)))
        self.predictor = inference.create_predictor(config)
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    @property
    def class_names(self):
        return list(self.info["class_names"])

    def transform(self):
        augment = AugmentConfig(interpolation=self.info["interpolation"],
                                crop_pct=float(self.info["crop_pct"]))
        return build_transforms(augment, int(self.info["image_size"]), False, self.info["mean"],
                                self.info["std"])

    def logits(self, images) -> np.ndarray:
        """Logits [B, K] for a preprocessed batch [B, C, H, W]."""
        images = np.ascontiguousarray(np.asarray(images.numpy() if hasattr(images, "numpy")
                                                 else images, dtype=np.float32))
        self.input.reshape(list(images.shape))
        self.input.copy_from_cpu(images)
        self.predictor.run()
        return self.output.copy_to_cpu()

    def predict_paths(self, paths: Sequence, top_k: int = 5, batch_size: int = 64) -> dict:
        return predict_files(collect_image_paths(paths), self.transform(), self.class_names,
                             self.logits, top_k, batch_size)
