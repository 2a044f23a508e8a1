"""Embeddings and search: the tokens of chosen blocks, the index beside the weights (reused,
rebuilt when the weights change), nearest images to a query, nearest-neighbour accuracy, the
app's similar training images, and one-line errors for a block the model lacks, a query that
is not an image and an index of other weights."""

import json
import shutil

import numpy as np
import paddle
import pytest
from PIL import Image

import vit
from conftest import assert_one_line_error, run_tool
from vit.config import load_default_config
from vit.data.sources import build_datasets

# A short run on the whole training split: 15 epochs, about 15 s of training.
SHORT = ["-o", "train.epochs=15", "-o", "optim.warmup_epochs=1"]
# Its 1-nearest-neighbour accuracy on the 359 test digits: 0.833 on an AMD EPYC with AVX2 (its
# test top-1 0.819); chance is 0.1. The floor leaves room for other CPUs' rounding.
KNN_FLOOR = 0.6


def test_block_tokens_are_the_blocks_outputs_with_the_patches_as_their_grid():
    paddle.seed(0)
    model = vit.create_model("ViT_tiny_patch4_16", num_classes=10)
    model.eval()
    images = paddle.randn([2, 3, 16, 16])
    last = model.forward_intermediates(images, blocks=1, norm=True)[0]
    np.testing.assert_allclose(last.class_token.numpy(), model.forward_features(images).numpy(),
                               atol=1e-6)
    first, final = model.forward_intermediates(images, blocks=[0, -1])  # raw outputs
    tokens = model.patch_embed(images)
    tokens = paddle.concat([model.cls_token.expand([2, -1, -1]), tokens], axis=1) + model.pos_embed
    expected = model.blocks[0](tokens).numpy()
    np.testing.assert_allclose(first.class_token.numpy(), expected[:, 0], atol=1e-6)
    rows, columns = model.grid_size
    assert first.patch_tokens.shape == [2, 64, rows, columns]
    # the patch in row r, column c is token 1 + r * columns + c
    np.testing.assert_allclose(first.patch_tokens.numpy()[:, :, 1, 2], expected[:, 1 + columns + 2],
                               atol=1e-6)
    assert not np.allclose(final.class_token.numpy(), last.class_token.numpy())  # raw, not normed
    with pytest.raises(IndexError, match="block 6: the model has 6 blocks"):
        model.forward_intermediates(images, blocks=[6])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A short run of the default config, whose checkpoints folder the index is written into."""
    out = tmp_path_factory.mktemp("embed")
    result = run_tool("train", *SHORT, "-o", f"output.dir={out}", "-o", "output.run_name=run")
    assert result.returncode == 0, result.stderr
    return out / "run"


def test_nearest_neighbour_accuracy_of_the_test_split_against_the_training_index(run):
    result = run_tool("embed", "--weights", run, "--eval")
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if "nearest-neighbour accuracy" in l)
    assert line.startswith("1-nearest-neighbour accuracy of the test split (359 images)")
    assert float(line.split()[-1]) >= KNN_FLOOR, line
    folder = run / "checkpoints" / "best.embeddings"
    vectors = np.load(folder / "digits-train.npy")
    assert vectors.shape[1] == 64 and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert (folder / "digits-train.csv").read_text().splitlines()[0] == "path,label,position"


def _training_digit(tmp_path):
    config = load_default_config(SHORT[1::2])  # the run's split
    train = build_datasets(config.data).splits["train"]
    path = tmp_path / "digit.png"
    Image.fromarray(train.items[0]).save(path)
    return path, train.describe(0), train.class_names[train.labels[0]]


def test_a_query_finds_itself_first_and_the_index_is_reused_until_the_weights_change(run, tmp_path):
    image, name, label = _training_digit(tmp_path)
    result = run_tool("embed", "--weights", run, "--query", image, "--top-k", "3")
    assert result.returncode == 0, result.stderr
    assert "index of" not in result.stderr  # built by the test before: read back
    nearest = [l.split() for l in result.stdout.splitlines() if l.startswith("  ")]
    assert nearest[0] == ["1.", "1.0000", label, name] and len(nearest) == 3
    saved = run / "checkpoints" / "best.embeddings" / "digits-train.json"
    record = json.loads(saved.read_text())
    saved.write_text(json.dumps({**record, "weights_sha256": "0" * 64}))  # as if retrained
    again = run_tool("embed", "--weights", run)
    assert again.returncode == 0 and "rebuilding the index digits-train" in again.stderr


def test_bad_blocks_queries_and_indexes_are_one_line(run, tmp_path):
    assert_one_line_error(run_tool("embed", "--weights", run, "--block", "6"),
                          "--block 6: block 6: the model has 6 blocks")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert_one_line_error(run_tool("embed", "--weights", run, "--query", text),
                          f"the query {text} is not an image that can be read")
    saved = run / "checkpoints" / "best.embeddings" / "digits-train.json"
    other = tmp_path / "other.json"
    for suffix in (".npy", ".csv"):
        shutil.copy(saved.with_suffix(suffix), other.with_suffix(suffix))
    other.write_text(json.dumps({**json.loads(saved.read_text()), "model": "ViT_base_patch16_224"}))
    assert_one_line_error(run_tool("embed", "--weights", run, "--index", other),
                          "was built by another model (ViT_base_patch16_224")


def test_the_app_shows_the_nearest_training_images_and_needs_a_checkpoint(run, tmp_path):
    from vit.app.similar_images import nearest_training_images
    from vit.engine.inference import load_for_inference

    image, _, label = _training_digit(tmp_path)
    note, items = nearest_training_images(load_for_inference(run), image, tmp_path / "g", "en")
    assert "digit.png" in note and len(items) == 8
    assert items[0][1] == f"{label} (1.000)"
    with Image.open(items[0][0]) as first, Image.open(image) as query:
        np.testing.assert_array_equal(np.asarray(first.convert("L").resize((8, 8), Image.NEAREST)),
                                      np.asarray(query.convert("L")))
