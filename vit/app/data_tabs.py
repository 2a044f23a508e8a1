"""The Data and Preprocessing tabs: acquire a data set and look at it, then see what the
preprocessing does to it. Both call what `tools/train.py --stats-only` calls."""

from typing import Dict

import gradio as gr

from ..config import load_default_config
from ..data.builder import prepare_data
from ..data.sources import SOURCES, source_names
from ..data.stats import format_stats
from ..engine.builders import resolve_image_size
from ..engine.data_report import write_data_report
from .common import AppFolders, data_overrides, user_errors


def data_tab(folders: AppFolders) -> Dict[str, gr.components.Component]:
    """Build the Data tab; return the fields the other tabs read (the data set's settings)."""
    gr.Markdown("### 1. Data acquisition\nPick where the images come from and load them. "
                "`digits` is embedded; `fractals` are generated (FractalDB-style, "
                "rendered once into the cache); `folder` and `list` read your files; the "
                "`paddle.vision` sets download, or read a local archive.")
    with gr.Row():
        source = gr.Dropdown(source_names(), value="digits", label="source",
                             elem_id="data-source")
        root = gr.Textbox(label="data.root (folder of a folder/list set, or download and fractals cache)")
        archive = gr.Textbox(label="data.archive (local archive of a paddle.vision set)")
    with gr.Row():
        train_list = gr.Textbox(label="data.train_list (list source)")
        label_names = gr.Textbox(label="data.label_names (list source)")
    about = gr.Markdown(SOURCES["digits"].description)
    load = gr.Button("Load data", variant="primary", elem_id="load-data")
    summary = gr.Markdown(elem_id="data-summary")
    counts = gr.Dataframe(label="images per class and split", interactive=False,
                          elem_id="class-counts")
    with gr.Row():
        histogram = gr.Image(label="class counts", type="filepath", elem_id="class-histogram")
        samples = gr.Image(label="samples", type="filepath", elem_id="data-samples")
    source.change(lambda name: SOURCES[name].description, source, about)
    fields = [source, root, archive, train_list, label_names]

    @user_errors
    def on_load(*values):
        config = load_default_config(data_overrides(*values))
        data = prepare_data(config, resolve_image_size(config))
        paths = write_data_report(data, folders.scratch / "data" / config.data.source,
                                  config.data.split_seed)
        stats = data.stats
        splits = stats["splits"]
        text = (f"**{stats['source']}**: {stats['num_classes']} classes, "
                f"{stats['total_images']:,} images — " + ", ".join(
                    f"{split} {info['num_images']:,}" for split, info in splits.items()) +
                (f"; {len(stats['skipped'])} files skipped" if stats["skipped"] else ""))
        table = [[name, *(splits[s]["per_class"][name] for s in splits)]
                 for name in stats["class_names"]]
        return (text, gr.update(value=table, headers=["class", *splits]),
                str(paths["class_histogram"]), str(paths["samples"]))

    load.click(on_load, fields, [summary, counts, histogram, samples])
    return {"fields": fields}


def preprocessing_tab(folders: AppFolders, data_fields) -> None:
    """Build the Preprocessing tab over the Data tab's data set."""
    defaults = load_default_config()
    augment = defaults.augment
    gr.Markdown("### 2. Preprocessing and information about the data set\nImages are resized "
                "to the model's input, augmented while training, and normalised. The table "
                "and figures are the ones `tools/train.py --stats-only` writes.")
    with gr.Row():
        size = gr.Number(value=resolve_image_size(defaults), precision=0,
                         label="image size (pixels)")
        crop = gr.Checkbox(value=augment.random_resized_crop, label="random resized crop")
        scale = gr.Slider(0.05, 1.0, value=augment.crop_scale[0], step=0.05,
                          label="crop: smallest area")
        padding = gr.Number(value=augment.crop_padding, precision=0,
                            label="random shift (padding, pixels)")
    with gr.Row():
        flip = gr.Slider(0.0, 1.0, value=augment.hflip, step=0.1, label="horizontal flip")
        rand_n = gr.Number(value=augment.rand_augment_n, precision=0,
                           label="RandAugment operations (0: off)")
        rand_m = gr.Slider(0, 10, value=augment.rand_augment_m, step=1,
                           label="RandAugment magnitude")
        norm = gr.Radio(["0.5 / 0.5 (ViT)", "measured on the data set"],
                        value="0.5 / 0.5 (ViT)", label="normalisation")
    apply = gr.Button("Show preprocessing", variant="primary", elem_id="show-preprocessing")
    report = gr.Textbox(label="data set information", lines=14, elem_id="data-report")
    with gr.Row():
        histogram = gr.Image(label="class counts", type="filepath")
        sizes = gr.Image(label="image sizes", type="filepath")
    with gr.Row():
        before = gr.Image(label="as stored", type="filepath", elem_id="samples-before")
        after = gr.Image(label="after the training pipeline", type="filepath",
                         elem_id="samples-after")

    @user_errors
    def on_apply(*values):
        data_values, (image_size, random_crop, smallest, shift, hflip, ops, magnitude,
                      normalisation) = values[:5], values[5:]
        overrides = data_overrides(*data_values) + [
            f"data.image_size={int(image_size)}",
            f"augment.random_resized_crop={str(bool(random_crop)).lower()}",
            f"augment.crop_scale=[{smallest}, 1.0]", f"augment.crop_padding={int(shift)}",
            f"augment.hflip={hflip}", f"augment.rand_augment_n={int(ops)}",
            f"augment.rand_augment_m={int(magnitude)}"]
        if normalisation.startswith("measured"):
            overrides += ["augment.mean=dataset", "augment.std=dataset"]
        config = load_default_config(overrides)
        data = prepare_data(config, int(image_size))
        paths = write_data_report(data, folders.scratch / "preprocessing" / config.data.source,
                                  config.data.split_seed)
        return (format_stats(data.stats), str(paths["class_histogram"]),
                str(paths["image_sizes"]), str(paths["samples"]),
                str(paths["samples_preprocessed"]))

    apply.click(on_apply, [*data_fields, size, crop, scale, padding, flip, rand_n, rand_m, norm],
                [report, histogram, sizes, before, after])
