"""Looking inside a ViT, with known answers: the recorder leaves the model and the summary table
alone, rollout of identity attention is the identity, uniform attention has a mean distance
computed by hand, orthogonal position embeddings are dissimilar to each other, PCA gives back
the components a filter bank was built from, and non-square grids work."""

import numpy as np
import paddle
import pytest

from conftest import assert_one_line_error, run_tool
from vit.analysis import (attention_rollout, class_token_map, filter_components,
                          mean_attention_distance, position_similarity, record_attention)
from vit.models import create_model, summary_text, table_diff


def _images(batch, size, seed=0):
    return paddle.to_tensor(np.random.default_rng(seed).standard_normal(
        (batch, 3) + size).astype("float32"))


def test_recorder_returns_softmax_rows_and_leaves_model_and_table_alone(seed_table):
    model = create_model("ViT_tiny_patch4_16", num_classes=5, img_size=(16, 24))  # 4x6 grid
    model.eval()
    x = _images(2, (16, 24))
    with paddle.no_grad():
        before = model(x).numpy()
        with record_attention(model) as recorder:
            during = model(x).numpy()
            maps = recorder.stacked()
    assert maps.shape == (6, 2, 4, 25, 25)  # [L, B, H, N, N]
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
    # recording runs Paddle's attention, which forms the weights (eager CPU runs without a
    # recorder take the fused kernel): the same logits to float32 rounding
    np.testing.assert_allclose(before, during, rtol=0, atol=1e-6)
    assert all(not block.attn.attn_drop._forward_post_hooks for block in model.blocks)
    with paddle.utils.unique_name.guard():
        base = create_model("ViT_base_patch16_384")
    base.eval()
    with record_attention(base) as recorder:  # the contract's table, printed while recording
        table, _ = summary_text(base, (1, 3, 384, 384))
    assert table_diff(table, seed_table) == ""
    assert recorder.stacked().shape == (12, 1, 12, 577, 577)


def test_recording_works_in_train_mode_with_attention_dropout_before_the_dropout():
    model = create_model("ViT_tiny_patch4_16", attn_drop_rate=0.5)
    model.train()
    with record_attention(model) as recorder:
        model(_images(3, (16, 16)))
    np.testing.assert_allclose(recorder.stacked().sum(-1), 1.0, atol=1e-5)


def test_rollout_of_identity_attention_is_the_identity():
    maps = np.broadcast_to(np.eye(17), (6, 2, 4, 17, 17))
    np.testing.assert_allclose(attention_rollout(maps), np.broadcast_to(np.eye(17), (2, 17, 17)))
    np.testing.assert_allclose(attention_rollout(maps, "max", discard_ratio=0.5),
                               np.broadcast_to(np.eye(17), (2, 17, 17)))


def test_rollout_normalises_rows_not_columns():
    rng = np.random.default_rng(0)
    maps = rng.random((3, 1, 2, 5, 5))
    maps /= maps.sum(-1, keepdims=True)
    rollout = attention_rollout(maps)
    np.testing.assert_allclose(rollout.sum(-1), 1.0)  # vit-explain's bug summed columns
    by_hand = np.eye(5)
    for layer in maps[:, 0].mean(1):
        joint = (layer + np.eye(5)) / (layer + np.eye(5)).sum(-1, keepdims=True)
        by_hand = joint @ by_hand
    np.testing.assert_allclose(rollout[0], by_hand)


@pytest.mark.parametrize("grid,patch,expected", [((24, 24), 16, 200.0), ((7, 7), 4, 14.4),
                                                  ((4, 4), 4, 8.03)])  # the demo's grid
def test_uniform_attention_has_the_mean_distance_computed_by_hand(grid, patch, expected):
    tokens = grid[0] * grid[1] + 1
    maps = np.full((2, 1, 3, tokens, tokens), 1.0 / tokens)
    distances = mean_attention_distance(maps, grid, (patch, patch))
    assert distances.shape == (2, 3)
    np.testing.assert_allclose(distances, expected, atol=0.05)


def test_local_attention_is_closer_than_uniform_on_a_non_square_grid():
    grid, tokens = (3, 5), 16
    local = np.zeros((1, 1, 1, tokens, tokens))
    local[..., np.arange(tokens), np.arange(tokens)] = 1.0  # each patch attends to itself
    assert mean_attention_distance(local, grid, (4, 4))[0, 0] == 0.0
    heat = class_token_map(np.full((1, tokens, tokens), 1 / tokens), grid)
    assert heat.shape == (1, 3, 5) and np.allclose(heat, 1.0)


def test_orthogonal_position_embeddings_give_an_identity_similarity():
    grid = (3, 4)
    embeddings = np.eye(16)[:12] * 3.0  # 12 orthogonal vectors of width 16
    pos_embed = np.concatenate([np.ones((1, 16)), embeddings])[None]  # class token first
    similarity = position_similarity(pos_embed, grid)
    assert similarity.shape == (3, 4, 3, 4)
    np.testing.assert_allclose(similarity.reshape(12, 12), np.eye(12), atol=1e-12)


def test_pca_recovers_the_components_a_filter_bank_was_built_from():
    rng = np.random.default_rng(0)
    channels, patch, filters = 3, 4, 200
    basis, _ = np.linalg.qr(rng.standard_normal((channels * patch * patch, 3)))
    known = basis.T  # three orthonormal components of 48 numbers
    weights = rng.standard_normal((filters, 3)) * [5.0, 2.0, 0.5]  # decreasing variance
    bank = (weights @ known + rng.standard_normal(48) * 0.1).reshape(filters, channels, patch,
                                                                      patch)
    found, shares = filter_components(bank, count=3)
    assert found.shape == (3, channels, patch, patch)
    for component, expected in zip(found.reshape(3, -1), known):
        assert abs(abs(component @ expected) - 1.0) < 1e-2  # the same direction, up to sign
    assert shares[0] > shares[1] > shares[2] and abs(shares.sum() - 1.0) < 1e-9


def test_visualize_refuses_an_unreadable_image_in_one_line(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    weights = tmp_path / "missing.pdparams"
    assert_one_line_error(run_tool("visualize", "--weights", weights, "--image", bad),
                          "missing.json is missing")


def test_scaling_tool_writes_both_models_curves_and_skips_finished_points(tmp_path):
    args = ["--fractions", "0.1", "0.2", "--seeds", "1", "--epochs", "1", "--min-steps", "10",
            "--output", tmp_path / "scaling", "-o", "optim.warmup_epochs=0"]
    result = run_tool("scaling", *args)
    assert result.returncode == 0, result.stderr
    import json

    results = json.loads((tmp_path / "scaling" / "scaling.json").read_text())
    assert list(results["models"]) == ["ViT_tiny_patch4_16", "ResNet20"]
    for model in results["models"].values():
        sizes = [point["train_images"] for point in model["points"]]
        assert sizes == [117, 234] and all(len(p["test_top1"]) == 1 for p in model["points"])
    assert results["models"]["ResNet20"]["parameters"] == 274_042
    assert (tmp_path / "scaling" / "scaling.png").stat().st_size > 10_000
    assert "[0/4] ViT_tiny_patch4_16_f0.1_s1 (117 images)" in result.stderr
    again = run_tool("scaling", *args)  # every point is finished: nothing is trained again
    assert again.returncode == 0 and again.stderr.count("is finished; kept") == 4
    compare = run_tool("compare", tmp_path / "scaling" / "ViT_tiny_patch4_16_f0.1_s1",
                       tmp_path / "scaling" / "ResNet20_f0.1_s1", "--output", tmp_path / "cmp")
    assert compare.returncode == 0, compare.stderr


def test_a_scaling_points_seed_reaches_its_weights_and_augmentation(tmp_path):
    """Two seeds of one point are two different runs (initialisation, batch order and the
    augmentation of every image), and their spread is the sample standard deviation."""
    from vit.config import load_default_config
    from vit.data.builder import prepare_data
    from vit.data.sampler import sample_seed
    from vit.engine.scaling import ScalingPlan, point_config, summarize_points
    from vit.engine.trainer import train
    from vit.serialization import safe_load

    plan = ScalingPlan(models=("ViT_tiny_patch4_16",), fractions=(0.1,), seeds=(1, 2), epochs=1,
                       min_steps=10)
    weights, scores, images = {}, {}, {}
    for seed in plan.seeds:
        config = point_config(load_default_config(), plan, plan.models[0], 0.1, seed, 117,
                              tmp_path)
        assert config.train.seed == seed
        result = train(config)
        weights[seed] = safe_load(result.best_checkpoint)
        scores[seed] = result.test["top1"]
        data = prepare_data(config, 16)
        # image 0 as the training pipeline augments it in epoch 0 of this seed
        images[seed] = data.train[(0, sample_seed(config.train.seed, 0, 0))][0]
    for key in ("cls_token", "blocks.0.attn.qkv.weight", "head.weight"):
        assert np.abs(np.asarray(weights[1][key]) - np.asarray(weights[2][key])).max() > 1e-3, key
    assert np.abs(images[1] - images[2]).max() > 0.1
    np.testing.assert_array_equal(data.train[(0, sample_seed(2, 0, 0))][0], images[2])
    summary = summarize_points(load_default_config(), plan, {0.1: 117}, 10, tmp_path)
    point = summary["models"]["ViT_tiny_patch4_16"]["points"][0]
    assert point["test_top1"] == [scores[1], scores[2]]
    assert point["std"] == pytest.approx(abs(scores[1] - scores[2]) / np.sqrt(2))
