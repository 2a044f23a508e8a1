"""The Inference tab: pick a checkpoint or an exported model, predict uploaded images with the
top-5 and the attention rollout, and evaluate on a split (accuracy, per-class report, confusion
matrix, mistakes), with the functions `tools/infer.py` and `tools/visualize.py` call."""

import contextlib
import threading
from pathlib import Path
from typing import Dict, List

import gradio as gr

from ..engine.evaluation import evaluate_model
from ..engine.inference import load_for_inference, load_published, predict_paths
from ..models.pretrained import find_weights, list_pretrained
from ..engine.inspection import explain_image, has_attention
from ..errors import VitError
from ..viz import save_figure
from ..viz.attention_figures import plot_rollout
from .common import AppFolders, stamp, user_errors

MAX_IMAGES = 16
TOP_K = 5  # classes shown per image


class Predictors:
    """Loaded models by path, shared by every page (loading ViT-B takes seconds). A model
    serves one request at a time: the attention recorder hooks the model itself, so two
    requests at once would read each other's maps."""

    def __init__(self):
        self.loaded: Dict[str, object] = {}
        self.locks: Dict[str, threading.Lock] = {}
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def using(self, path: str):
        """The predictor for `path`, held for this request alone."""
        with self.lock:
            if path not in self.loaded:
                self.loaded[path] = _load(path)
                self.locks[path] = threading.Lock()
            model_lock = self.locks[path]
        with model_lock:
            yield self.loaded[path]


def _load(path: str):
    if path.endswith("inference.yml"):
        from ..engine.export import InferenceModel

        return InferenceModel(Path(path).parent)
    if find_weights(path) is not None:  # published weights by name (downloaded once)
        return load_published(path)
    return load_for_inference(path)


def model_choices(output: Path) -> List[str]:
    """Best checkpoints and exported models under `output`, newest first, then the published
    weights by name."""
    found = list(output.glob("*/checkpoints/best.pdparams")) + \
        list(output.glob("**/export/inference.yml"))
    return [str(p) for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)] + \
        list_pretrained()


def inference_tab(folders: AppFolders, predictors: Predictors) -> dict:
    """Build the Inference tab; returns the handler that refreshes the model list on load."""
    gr.Markdown("### 4. Inference\nA checkpoint (`best.pdparams`) or an exported model "
                "(`export/inference.yml`) from `output/`, or published weights by name "
                "(ImageNet classes; downloaded once). Attention maps need a checkpoint or "
                "published weights.")
    with gr.Row():
        model = gr.Dropdown([], label="model", elem_id="model-choice", allow_custom_value=True)
        refresh = gr.Button("Refresh the list")
    _prediction_section(folders, predictors, model)
    _evaluation_section(folders, predictors, model)

    def listing():
        choices, published = model_choices(folders.output), set(list_pretrained())
        local = [choice for choice in choices if choice not in published]
        # a local model is chosen for the user; published weights (a download) only by them
        return gr.update(choices=choices, value=local[0] if local else None)

    refresh.click(listing, None, model)
    return {"load": [(listing, None, model)]}


def _prediction_section(folders: AppFolders, predictors: Predictors, model):
    """Upload images; see the top 5 and the rollout of the first, and a row for each."""
    uploads = gr.File(file_count="multiple", file_types=["image"], label="images",
                      elem_id="upload-images")
    predict = gr.Button("Predict", variant="primary", elem_id="predict")
    with gr.Row():
        best = gr.Label(num_top_classes=TOP_K, label="top 5 (first image)", elem_id="top5")
        overlay = gr.Image(label="attention rollout (first image)", type="filepath",
                           elem_id="rollout")
    table = gr.Dataframe(label="every image", interactive=False, elem_id="predictions",
                         headers=["image", *(f"top-{i} (probability)" for i in
                                             range(1, TOP_K + 1)), "error"])

    @user_errors
    def on_predict(path, files):
        images = [Path(f if isinstance(f, str) else f.name) for f in (files or [])][:MAX_IMAGES]
        if not images:
            raise gr.Error("upload one or more images")
        with predictors.using(_checked(path)) as predictor:
            return predict_uploads(predictor, images, folders.scratch / "predictions")

    predict.click(on_predict, [model, uploads], [best, overlay, table])


def predict_uploads(predictor, images: List[Path], figures: Path):
    """What `tools/infer.py --images` answers: the readable images predicted, each unreadable
    one named in its own row; the top 5 and the rollout (saved under `figures`) of the first
    good one. Returns (label, rollout figure or None, table update)."""
    rows = predict_paths(predictor, images)["rows"]
    good = [row for row in rows if "top" in row]
    label = dict(good[0]["top"]) if good else {}
    figure = None
    if good and has_attention(predictor):
        explained = explain_image(predictor, good[0]["path"])
        name, probability = explained["top"][0]
        figure = str(save_figure(plot_rollout(
            explained["image"], explained["rollout"],
            caption=f"predicted {name} ({probability:.0%})"), figures / f"rollout-{stamp()}.png"))
    return label, figure, gr.update(value=prediction_table(rows, predictor),
                                    headers=prediction_headers(predictor))


def _evaluation_section(folders: AppFolders, predictors: Predictors, model):
    """Evaluate on a split: accuracy, confusion matrix, mistakes and the per-class report."""
    with gr.Row():
        split = gr.Dropdown(["test", "val", "train"], value="test", label="split")
        evaluate = gr.Button("Evaluate", variant="primary", elem_id="evaluate")
    accuracy = gr.Markdown(elem_id="eval-accuracy")
    with gr.Row():
        confusion = gr.Image(label="confusion matrix", type="filepath", elem_id="confusion")
        mistakes = gr.Image(label="most confident mistakes", type="filepath")
    report = gr.Textbox(label="per-class report", lines=14, elem_id="class-report")

    @user_errors
    def on_evaluate(path, split_name):
        with predictors.using(_checked(path)) as predictor:
            metrics = evaluate_model(predictor, split_name, folders.scratch / "evaluations" /
                                     f"{split_name}-{stamp()}")
        text = (f"**{split_name} split**: top-1 **{metrics['top1']:.4f}**, top-5 "
                f"{metrics['top5']:.4f}, on {metrics['num_samples']} images")
        return (text, metrics["paths"]["confusion_png"], metrics["paths"]["mistakes"],
                metrics["report"])

    evaluate.click(on_evaluate, [model, split], [accuracy, confusion, mistakes, report])


def _checked(path) -> str:
    """A chosen (or typed) model: a checkpoint, an export, or published weights by name."""
    if not path:
        raise VitError("no model is chosen", "train one in the Training tab, or refresh the list")
    published = not Path(path).exists() and find_weights(path) is not None
    if not published and (not Path(path).is_file() or
                          not path.endswith((".pdparams", "inference.yml"))):
        raise VitError(f"model '{path}' is neither a checkpoint (.pdparams), an exported model "
                       "(inference.yml) nor a published name", "pick one from the list")
    return path


def prediction_headers(predictor) -> List[str]:
    """The columns of the every-image table: the file, its top classes, and why it could not
    be read."""
    shown = min(TOP_K, len(predictor.preprocessing.class_names))
    return ["image", *(f"top-{i} (probability)" for i in range(1, shown + 1)), "error"]


def prediction_table(rows: List[dict], predictor) -> List[List[str]]:
    """One row per image of `predict_paths`' rows, the same number of cells in each."""
    shown = len(prediction_headers(predictor)) - 2
    table = []
    for row in rows:
        top = [f"{name} ({p:.3f})" for name, p in row.get("top", [])][:shown]
        table.append([Path(row["path"]).name, *top, *[""] * (shown - len(top)),
                      row.get("error", "")])
    return table
