"""The Inference tab: pick a checkpoint or an exported model, predict uploaded images (or one of
the digits' test images shown as examples) with the top-5 and the attention rollout, and
evaluate on a split (accuracy, per-class report, confusion matrix, mistakes), with the functions
`tools/infer.py` and `tools/visualize.py` call. A model of several labels per image shows every
label's probability and the labels above their thresholds, and is evaluated by mAP, exact match
and Hamming loss with a per-label report and precision-recall curves."""

import contextlib
import threading
from pathlib import Path
from typing import Dict, List

import gradio as gr

from ..config import load_default_config
from ..data.samples import sample_indices
from ..data.sources import SPLITS, build_datasets
from ..engine.evaluation import evaluate_model
from ..engine.inference import load_for_inference, load_published, predict_paths
from ..engine.inspection import explain_image, has_attention
from ..engine.export import SERVED_BY, InferenceModel
from ..engine.run_folder import RunFolder, best_checkpoints_in
from ..files import atomic_path
from ..models.pretrained_registry import find_weights, list_pretrained
from ..viz import save_figure
from ..viz.attention_figures import plot_rollout
from .common import AppFolders, empty_table, label, stamp, user_errors
from .i18n import AppError, language_of, say, t
from .score_words import score_text
from .similar_images import similar_section

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
    if Path(path).name in SERVED_BY:  # an export, run by the runtime its file is for
        return InferenceModel(Path(path).parent, runtime=SERVED_BY[Path(path).name])
    if find_weights(path) is not None:  # published weights by name (downloaded once)
        return load_published(path)
    return load_for_inference(path)


def model_choices(output: Path) -> List[str]:
    """Best checkpoints and exported models under `output` (each export once per runtime it
    was made for: Paddle Inference, ONNX Runtime, OpenVINO), newest first, then the published
    weights by name."""
    found = best_checkpoints_in(output) + [path for name in SERVED_BY
                                           for path in output.glob(f"**/{RunFolder.EXPORT}/{name}")]
    return [str(p) for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)] + \
        list_pretrained()


def inference_tab(folders: AppFolders, predictors: Predictors) -> dict:
    """Build the Inference tab; returns the handler that refreshes the model list on load."""
    gr.Markdown(t("inference.intro"))
    with gr.Row():
        model = gr.Dropdown([], label=label("weights"), elem_id="model-choice",
                            allow_custom_value=True)
        refresh = gr.Button(t("refresh"))
    table, uploads = _prediction_section(folders, predictors, model)
    similar_section(folders, predictors, model, uploads, _checked)
    _evaluation_section(folders, predictors, model)

    def listing():
        choices, published = model_choices(folders.output), set(list_pretrained())
        local = [choice for choice in choices if choice not in published]
        # a local model is chosen for the user; published weights (a download) only by them
        return gr.update(choices=choices, value=local[0] if local else None)

    refresh.click(listing, None, model)
    headers = empty_table(lambda language: prediction_headers(TOP_K, language))
    return {"load": [(listing, None, model), (headers, None, table)]}


def _prediction_section(folders: AppFolders, predictors: Predictors, model):
    """Upload images, or click an example; see the top 5 and the rollout of the first, and a
    row for each."""
    uploads = gr.File(file_count="multiple", file_types=["image"], label=label("images"),
                      elem_id="upload-images")
    predict = gr.Button(t("inference.predict"), variant="primary", elem_id="predict")
    # an example fills the upload field (and a hidden image, which draws its thumbnail); the
    # click then predicts the upload field as the Predict button does
    thumbnail = gr.Image(type="filepath", visible=False)
    examples = gr.Examples([[str(path), [str(path)]] for path in
                            example_images(folders.scratch / "examples")],
                           inputs=[thumbnail, uploads], visible_columns=[0],
                           label=t("inference.examples"), examples_per_page=10,
                           elem_id="inference-examples")
    with gr.Row():
        with gr.Column():
            # every class it is given: the top 5, or a model of several labels' every label
            best = gr.Label(label=t("inference.top5"), elem_id="top5")
            above = gr.Markdown(elem_id="labels-above")  # a model of several labels per image
        overlay = gr.Image(label=t("inference.rollout"), type="filepath", elem_id="rollout")
    table = gr.Dataframe(label=t("inference.table"), interactive=False, elem_id="predictions",
                         headers=prediction_headers(TOP_K))

    @user_errors
    def on_predict(path, files, request: gr.Request):
        images = [Path(f if isinstance(f, str) else f.name) for f in (files or [])][:MAX_IMAGES]
        if not images:
            raise AppError("error.no_images")
        with predictors.using(_checked(path)) as predictor:
            return predict_uploads(predictor, images, folders.scratch / "predictions",
                                   language_of(request))

    shown = [best, above, overlay, table]
    predict.click(on_predict, [model, uploads], shown)
    examples.load_input_event.then(on_predict, [model, uploads], shown,
                                   api_visibility="undocumented")  # the API's is /on_predict
    return table, uploads


def example_images(folder: Path) -> List[Path]:
    """One test image of each digit, from the split the default config makes (the one a run
    of the Training tab is tested on), written under `folder` when the app starts: the
    Inference tab's examples. The 8x8 pixels are stored as they are, so a prediction sees
    what evaluating the test split sees."""
    test = build_datasets(load_default_config(["data.source=digits"]).data).splits["test"]
    paths = []
    for digit, (index,) in sample_indices(test, per_class=1).items():
        path = folder / f"digit-{test.class_names[digit]}-test{index}.png"
        with atomic_path(path) as temporary:
            test.load(index).save(temporary, format="PNG")
        paths.append(path)
    return paths


def predict_uploads(predictor, images: List[Path], figures: Path, language: str = "en"):
    """What `tools/infer.py --images` answers: the readable images predicted, each unreadable
    one named in its own row; the top 5 (a model of several labels: every label's probability
    and the labels above their thresholds) and the rollout (saved under `figures`) of the first
    good one. Returns (top classes, labels line, rollout figure or None, table update)."""
    prep = predictor.preprocessing
    multilabel, names = prep.multilabel, prep.class_names
    rows = predict_paths(predictor, images, len(names) if multilabel else TOP_K)["rows"]
    good = [row for row in rows if "top" in row]
    top = dict(good[0]["top"]) if good else {}
    figure = None
    if good and has_attention(predictor):
        figure = str(save_figure(_rollout(predictor, good[0]), figures / f"rollout-{stamp()}.png"))
    shown = min(TOP_K, len(names))
    line = labels_line(good[0]["labels"], language) if multilabel and good else ""
    return top, line, figure, gr.update(value=prediction_table(rows, shown, multilabel, language),
                                          headers=prediction_headers(shown, language, multilabel))


def _rollout(predictor, row: dict):
    """The rollout figure of a predicted image (`row` of `predict_paths`), captioned with its
    likeliest class (or label: by its own probability, a sigmoid, not a softmax over all)."""
    explained = explain_image(predictor, row["path"])
    if predictor.preprocessing.multilabel:
        name, probability = row["top"][0]
        caption = f"likeliest label {name} ({probability:.0%})"
    else:
        name, probability = explained["top"][0]
        caption = f"predicted {name} ({probability:.0%})"
    return plot_rollout(explained["image"], explained["rollout"], caption=caption)


def labels_line(labels: List[tuple], language: str = "en") -> str:
    """The labels at or above their thresholds (`predict_paths`' `labels` of an image), with
    their probabilities, or that there are none."""
    if not labels:
        return say(language, "inference.no_label")
    return say(language, "inference.labels", labels=_labels_text(labels, language, 2))


def _labels_text(labels: List[tuple], language: str, places: int) -> str:
    return say(language, "list.separator").join(f"{name} ({p:.{places}f})" for name, p in labels)


def _evaluation_section(folders: AppFolders, predictors: Predictors, model):
    """Evaluate on a split: accuracy, confusion matrix, mistakes and the per-class report (a
    model of several labels: mAP, the precision-recall curves and the per-label report)."""
    with gr.Row():
        split = gr.Dropdown([(t(f"split.{name}"), name) for name in SPLITS], value="test",
                            label=label("split"))
        evaluate = gr.Button(t("inference.evaluate"), variant="primary", elem_id="evaluate")
    accuracy = gr.Markdown(elem_id="eval-accuracy")
    with gr.Row():
        confusion = gr.Image(label=t("inference.confusion"), type="filepath",
                             elem_id="confusion")
        mistakes = gr.Image(label=t("inference.mistakes"), type="filepath")
    report = gr.Textbox(label=t("inference.report"), lines=14, elem_id="class-report")

    @user_errors
    def on_evaluate(path, split_name, request: gr.Request):
        with predictors.using(_checked(path)) as predictor:
            return evaluate_split(predictor, split_name, folders.scratch / "evaluations",
                                  language_of(request))

    evaluate.click(on_evaluate, [model, split], [accuracy, confusion, mistakes, report])


def evaluate_split(predictor, split: str, folder: Path, language: str = "en"):
    """What `tools/infer.py --eval` reports, written under `folder`: the line of figures, the
    confusion matrix (a model of several labels: the precision-recall curves), the mistakes
    figure (a model of several labels: None, it has none) and the per-class (per-label)
    report. Returns the four, plain values as the API gives them."""
    metrics = evaluate_model(predictor, split, folder / f"{split}-{stamp()}")
    text = say(language, "inference.scores", split=say(language, f"split.{split}"),
               scores=score_text(language, metrics, emphasis=True), count=metrics["num_samples"])
    paths = metrics["paths"]
    if predictor.preprocessing.multilabel:
        return text, paths["pr_curves"], None, metrics["report"]
    return text, paths["confusion_png"], paths["mistakes"], metrics["report"]


def _checked(path) -> str:
    """A chosen (or typed) model: a checkpoint, an export, or published weights by name."""
    if not path:
        raise AppError("error.no_model")
    published = not Path(path).exists() and find_weights(path) is not None
    if not published and (not Path(path).is_file() or
                          not path.endswith((".pdparams", *SERVED_BY))):
        raise AppError("error.not_a_model", path=path)
    return path


def prediction_headers(shown: int, language: str = "en", multilabel: bool = False) -> List[str]:
    """The columns of the every-image table: the file, (for a model of several labels) the
    labels above their thresholds, its `shown` top classes, and why it could not be read."""
    return [say(language, "inference.image"),
            *([say(language, "inference.labels_column")] if multilabel else []),
            *(say(language, "inference.rank", rank=i) for i in range(1, shown + 1)),
            say(language, "inference.error")]


def prediction_table(rows: List[dict], shown: int, multilabel: bool = False,
                     language: str = "en") -> List[List[str]]:
    """One row per image of `predict_paths`' rows, `shown` top classes in each (after the
    labels above their thresholds, for a model of several labels)."""
    table = []
    for row in rows:
        top = [f"{name} ({p:.3f})" for name, p in row.get("top", [])][:shown]
        labels = []
        if multilabel:
            labels = [_labels_text(row["labels"], language, 3) or say(language, "none")
                      if "labels" in row else ""]
        table.append([Path(row["path"]).name, *labels, *top, *[""] * (shown - len(top)),
                      row.get("error", "")])
    return table
