"""The Data and Preprocessing tabs: acquire a data set and look at it, then see what the
preprocessing does to it. Both call what `tools/train.py --stats-only` calls."""

from typing import List, Sequence

import gradio as gr

from ..config import load_default_config
from ..data.builder import prepare_data
from ..data.sources import SPLITS, source_names
from ..data.stats import format_stats
from ..engine.builders import resolve_image_size
from ..engine.data_report import write_data_report
from .common import (DATA_FIELD_KEYS, AppFolders, bind, choice_field, data_overrides, empty_table,
                     label, user_errors)
from .i18n import language_of, say, t


def class_count_headers(language: str = "en", splits: Sequence[str] = SPLITS) -> List[str]:
    """The columns of the images-per-class table: the class, then one per split."""
    return [say(language, "data.class"), *(say(language, f"split.{split}") for split in splits)]


def data_tab(folders: AppFolders) -> dict:
    """Build the Data tab; return the fields the other tabs read (the data set's settings,
    `fields`: DATA_FIELD_KEYS) and the handlers to run when a page loads (`load`)."""
    gr.Markdown(t("data.intro"))
    with gr.Row():
        source = gr.Dropdown(source_names(), value="digits", label=label("data.source"),
                             elem_id="data-source")
        task = choice_field("data.task", "multiclass", info=t("data.task.info"),
                            elem_id="data-task")
        root = gr.Textbox(label=label("data.root"), info=t("data.root.info"))
        archive = gr.Textbox(label=label("data.archive"), info=t("data.archive.info"))
    with gr.Row():
        train_list = gr.Textbox(label=label("data.train_list"), info=t("data.train_list.info"))
        label_names = gr.Textbox(label=label("data.label_names"),
                                 info=t("data.label_names.info"))
    about = gr.Markdown(t("source.digits"), elem_id="source-about")
    load = gr.Button(t("data.load"), variant="primary", elem_id="load-data")
    summary = gr.Markdown(elem_id="data-summary")
    counts = gr.Dataframe(label=t("data.counts"), interactive=False, elem_id="class-counts",
                          headers=class_count_headers())
    with gr.Row():
        histogram = gr.Image(label=t("data.class_counts"), type="filepath",
                             elem_id="class-histogram")
        samples = gr.Image(label=t("data.samples"), type="filepath", elem_id="data-samples")
    fields = [source, task, root, archive, train_list, label_names]  # DATA_FIELD_KEYS
    source.change(describe_source, source, about)
    load.click(bind(load_data, folders), fields, [summary, counts, histogram, samples])
    return {"fields": fields, "load": [(empty_table(class_count_headers), None, counts)]}


def describe_source(name: str):
    """On choosing a source: what it is."""
    return t(f"source.{name}")


@user_errors
def load_data(folders: AppFolders, request: gr.Request, *values):
    """Load data: acquire the data set the fields describe, write its report, and show its
    summary, its images per class and split, its class histogram and samples."""
    language = language_of(request)
    config = load_default_config(data_overrides(*values))
    data = prepare_data(config, resolve_image_size(config))
    paths = write_data_report(data, folders.scratch / "data" / config.data.source,
                              config.data.split_seed)
    stats = data.stats
    splits = stats["splits"]
    per_split = [f"{say(language, f'split.{split}')} {info['num_images']:,}"
                 for split, info in splits.items()]
    text = say(language, "data.summary", source=stats["source"],
               classes=stats["num_classes"], images=f"{stats['total_images']:,}",
               splits=say(language, "list.separator").join(per_split))
    if stats.get("task") == "multilabel":  # the "classes" are labels, several to an image
        text += say(language, "data.labels_per_image",
                    count=f"{splits['train']['labels_per_image']:.2f}")
    if stats["skipped"]:
        text += say(language, "data.skipped", count=len(stats["skipped"]))
    table = [[name, *(splits[s]["per_class"][name] for s in splits)]
             for name in stats["class_names"]]
    return (text, gr.update(value=table, headers=class_count_headers(language, splits)),
            str(paths["class_histogram"]), str(paths["samples"]))


def preprocessing_tab(folders: AppFolders, data_fields) -> None:
    """Build the Preprocessing tab over the Data tab's data set: its fields show the default
    config's preprocessing."""
    defaults = load_default_config()
    augment = defaults.augment
    gr.Markdown(t("preprocessing.intro"))
    with gr.Row():
        size = gr.Number(value=resolve_image_size(defaults), precision=0,
                         label=label("data.image_size"))
        crop = gr.Checkbox(value=augment.random_resized_crop,
                           label=label("augment.random_resized_crop"))
        scale = gr.Slider(0.05, 1.0, value=augment.crop_scale[0], step=0.05,
                          label=label("augment.crop_scale"))
        padding = gr.Number(value=augment.crop_padding, precision=0,
                            label=label("augment.crop_padding"))
    with gr.Row():
        flip = gr.Slider(0.0, 1.0, value=augment.hflip, step=0.1, label=label("augment.hflip"))
        rand_n = gr.Number(value=augment.rand_augment_n, precision=0,
                           label=label("augment.rand_augment_n"))
        rand_m = gr.Slider(0, 10, value=augment.rand_augment_m, step=1,
                           label=label("augment.rand_augment_m"))
        norm = gr.Radio([(t("preprocessing.norm_vit"), "vit"),
                         (t("preprocessing.norm_dataset"), "dataset")], value="vit",
                        label=label("augment.mean"))
    apply = gr.Button(t("preprocessing.show"), variant="primary", elem_id="show-preprocessing")
    report = gr.Textbox(label=t("preprocessing.report"), lines=14, elem_id="data-report")
    with gr.Row():
        histogram = gr.Image(label=t("data.class_counts"), type="filepath")
        sizes = gr.Image(label=t("preprocessing.sizes"), type="filepath")
    with gr.Row():
        before = gr.Image(label=t("preprocessing.before"), type="filepath",
                          elem_id="samples-before")
        after = gr.Image(label=t("preprocessing.after"), type="filepath",
                         elem_id="samples-after")
    apply.click(bind(show_preprocessing, folders),
                [*data_fields, size, crop, scale, padding, flip, rand_n, rand_m, norm],
                [report, histogram, sizes, before, after])


@user_errors
def show_preprocessing(folders: AppFolders, request: gr.Request, *values):
    """Show preprocessing: prepare the Data tab's data set with this tab's settings, and show
    its report, class histogram, image sizes, and samples before and after the training
    pipeline."""
    data_values, (image_size, random_crop, smallest, shift, hflip, ops, magnitude,
                  normalisation) = values[:len(DATA_FIELD_KEYS)], values[len(DATA_FIELD_KEYS):]
    overrides = data_overrides(*data_values) + [
        f"data.image_size={int(image_size)}",
        f"augment.random_resized_crop={str(bool(random_crop)).lower()}",
        f"augment.crop_scale=[{smallest}, 1.0]", f"augment.crop_padding={int(shift)}",
        f"augment.hflip={hflip}", f"augment.rand_augment_n={int(ops)}",
        f"augment.rand_augment_m={int(magnitude)}"]
    if normalisation == "dataset":
        overrides += ["augment.mean=dataset", "augment.std=dataset"]
    config = load_default_config(overrides)
    data = prepare_data(config, int(image_size))
    paths = write_data_report(data, folders.scratch / "preprocessing" / config.data.source,
                              config.data.split_seed)
    return (format_stats(data.stats), str(paths["class_histogram"]),
            str(paths["image_sizes"]), str(paths["samples"]),
            str(paths["samples_preprocessed"]))
