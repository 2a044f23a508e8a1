"""The Inference tab's search: the training images whose embeddings are nearest to an uploaded
image's (vit/engine/search.py, as `tools/embed.py --query` finds them), shown with their labels
and cosine similarities. The index of the training split is built once per checkpoint and kept
beside it. It needs a checkpoint or published weights: an exported graph gives logits only."""

from pathlib import Path
from typing import List

import gradio as gr
from PIL import Image

from ..engine.inference import LoadedModel
from ..engine.search import index_for, indexed_images, similar_images
from .common import stamp, user_errors
from .i18n import AppError, language_of, say, t

SHOWN = 8  # nearest training images in the gallery
THUMBNAIL = 96  # smaller images are enlarged to at least this width


def similar_section(folders, predictors, model, uploads, checked):
    """A button and a gallery under the prediction: the first upload's nearest training
    images (`checked`: the tab's check of the chosen model)."""
    search = gr.Button(t("similar.find"), elem_id="find-similar")
    note = gr.Markdown(elem_id="similar-note")
    gallery = gr.Gallery(label=t("similar.gallery"), columns=SHOWN, height="auto",
                         elem_id="similar-images")

    @user_errors
    def on_similar(path, files, request: gr.Request, progress=gr.Progress()):
        images = [Path(f if isinstance(f, str) else f.name) for f in (files or [])]
        if not images:
            raise AppError("error.no_images")
        with predictors.using(checked(path)) as predictor:
            if not isinstance(predictor, LoadedModel):
                raise AppError("error.similar_needs_checkpoint")
            return nearest_training_images(predictor, images[0], folders.scratch / "similar",
                                           language_of(request),
                                           lambda stage, done, total: progress(
                                               done / max(total, 1), desc=stage))

    search.click(on_similar, [model, uploads], [note, gallery])


def nearest_training_images(loaded: LoadedModel, image: Path, folder: Path, language: str,
                            progress=None):
    """(a line naming the query and the index, gallery items (image file, caption)) of the
    `SHOWN` training images nearest to `image`."""
    index = index_for(loaded, split="train", progress=progress)
    nearest = similar_images(loaded, index, [image], SHOWN)[0]["nearest"]
    rows = [near["row"] for near in nearest]
    folder.mkdir(parents=True, exist_ok=True)
    items: List[tuple] = []
    for near, picture in zip(nearest, indexed_images(loaded, index, rows)):
        path = folder / f"{stamp()}-{len(items)}.png"
        if picture.width < THUMBNAIL:  # 8x8 digits: whole pixels, not a blur
            scale = -(-THUMBNAIL // picture.width)
            picture = picture.resize((picture.width * scale, picture.height * scale),
                                     Image.NEAREST)
        picture.save(path)
        items.append((str(path), f"{near['label'] or '-'} ({near['similarity']:.3f})"))
    return say(language, "similar.note", image=image.name, count=f"{len(index.names):,}"), items
