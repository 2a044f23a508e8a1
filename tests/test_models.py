"""The model's behaviour: shapes, modes, gradients, initialisation, errors and state-dict keys."""


import numpy as np
import paddle
import pytest

from vit import ModelError
from vit.models import (VARIANTS, DropPath, count_parameters, count_parameters_by_name,
                        create_model, list_models)

TINY = "ViT_tiny_patch4_16"


def _images(batch, size, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return paddle.to_tensor(rng.standard_normal((batch, channels) + size).astype("float32"))


@pytest.mark.parametrize("name,expected", [
    ("ViT_base_patch16_384", 86_859_496), ("ViT_base_patch16_224", 86_567_656),
    ("ViT_base_patch32_384", 88_297_192), ("ViT_large_patch16_224", 304_326_632),
])
def test_published_parameter_counts(name, expected):
    assert count_parameters_by_name(name) == expected


def test_every_registered_model_has_the_size_its_shapes_give():
    for name in list_models():
        args = VARIANTS[name]
        size = args["img_size"]
        dim, depth, ratio = args["embed_dim"], args["depth"], args["mlp_ratio"]
        tokens = (size // args["patch_size"]) ** 2 + 1
        hidden = int(dim * ratio)
        qkv_bias = 3 * dim if args["qkv_bias"] else 0
        per_block = (4 * dim + 3 * dim * dim + qkv_bias + dim * dim + dim
                     + dim * hidden + hidden + hidden * dim + dim)
        expected = (3 * args["patch_size"] ** 2 * dim + dim + tokens * dim + dim
                    + depth * per_block + 2 * dim + dim * 1000 + 1000)
        assert count_parameters_by_name(name) == expected, name


def test_lazy_count_equals_the_built_model():
    assert count_parameters(create_model(TINY)) == count_parameters_by_name(TINY)


@pytest.mark.parametrize("img_size,batch", [(16, 1), (16, 5), ((16, 32), 2), (32, 3)])
def test_output_shape_for_sizes_and_batches(img_size, batch):
    model = create_model(TINY, img_size=img_size, num_classes=7)
    model.eval()
    size = img_size if isinstance(img_size, tuple) else (img_size, img_size)
    assert model(_images(batch, size)).shape == [batch, 7]


def test_num_classes_zero_returns_features():
    model = create_model(TINY, num_classes=0)
    model.eval()
    features = model(_images(2, (16, 16)))
    assert features.shape == [2, 64]
    assert model.forward_head(model.forward_features(_images(2, (16, 16)))).shape == [2, 64]


def test_representation_size_adds_the_pre_logits_layer():
    model = create_model(TINY, num_classes=5, representation_size=32)
    model.eval()
    x = _images(2, (16, 16))
    assert model(x).shape == [2, 5]
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == [2, 32]
    assert "pre_logits.fc.weight" in model.state_dict()


def test_eval_mode_is_deterministic_even_with_dropout():
    model = create_model(TINY, drop_rate=0.3, attn_drop_rate=0.3, drop_path_rate=0.3)
    model.eval()
    x = _images(4, (16, 16))
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())


@pytest.mark.parametrize("rates", [dict(drop_rate=0.3), dict(attn_drop_rate=0.3),
                                   dict(drop_path_rate=0.5)])
def test_each_kind_of_dropout_acts_only_in_train_mode(rates):
    paddle.seed(1)
    model = create_model(TINY, **rates)
    x = _images(4, (16, 16))
    model.train()
    assert not np.allclose(model(x).numpy(), model(x).numpy())
    model.eval()
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())


def test_stochastic_depth_rises_linearly_over_depth():
    model = create_model(TINY, drop_path_rate=0.5)
    rates = [getattr(block.drop_path, "drop_prob", 0.0) for block in model.blocks]
    np.testing.assert_allclose(rates, np.linspace(0, 0.5, len(model.blocks)))
    assert isinstance(model.blocks[0].drop_path, paddle.nn.Identity)


def test_drop_path_drops_whole_samples_and_keeps_the_mean():
    paddle.seed(0)
    layer = DropPath(0.25)
    layer.train()
    out = layer(paddle.ones([4000, 3, 5])).numpy()
    per_sample = out.reshape(4000, -1)
    np.testing.assert_allclose(np.unique(per_sample), [0.0, 1 / 0.75], rtol=1e-6)
    assert (per_sample == per_sample[:, :1]).all()  # a sample is dropped entirely or not at all
    assert abs(out.mean() - 1.0) < 0.05


def test_every_parameter_receives_a_gradient():
    model = create_model(TINY, num_classes=3, representation_size=16)
    model.train()
    loss = paddle.nn.functional.cross_entropy(model(_images(3, (16, 16))),
                                              paddle.to_tensor([0, 1, 2]))
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert float(paddle.abs(param.grad).sum()) > 0, name


def test_initialisation_follows_the_paper():
    paddle.seed(3)
    model = create_model("ViT_tiny_patch4_32", num_classes=10)
    for param in (model.pos_embed, model.cls_token, model.blocks[0].attn.qkv.weight,
                  model.blocks[3].mlp.fc1.weight):
        values = param.numpy()
        assert np.abs(values).max() <= 0.04 + 1e-6  # truncated at two standard deviations
        if values.size > 1000:  # N(0, 0.02) cut at +-2 sigma has a standard deviation of 0.0176
            assert abs(values.std() - 0.0176) < 0.001
    assert not model.blocks[0].attn.qkv.bias.numpy().any()
    assert (model.norm.weight.numpy() == 1).all() and not model.norm.bias.numpy().any()


def test_zero_head_starts_the_classifier_at_zero():
    model = create_model(TINY, num_classes=4, zero_head=True)
    assert not model.head.weight.numpy().any() and not model.head.bias.numpy().any()


def test_wrong_input_size_names_both_sizes_and_the_fix():
    model = create_model(TINY)
    with pytest.raises(ModelError, match=r"input is 32x32 but the model was built for 16x16.*img_size=32"):
        model(_images(1, (32, 32)))
    with pytest.raises(ModelError, match=r"18x18, which is not divisible by the patch size 4x4"):
        model(_images(1, (18, 18)))


def test_image_size_not_divisible_by_patch_is_refused_at_build():
    with pytest.raises(ModelError, match="img_size 30x30 is not divisible by the patch size 4x4"):
        create_model(TINY, img_size=30)


def test_unknown_model_name_lists_close_matches():
    with pytest.raises(ModelError, match="unknown model 'ViT_base_patch16_348'.*ViT_base_patch16_384"):
        create_model("ViT_base_patch16_348")


def test_unknown_constructor_argument_names_the_closest():
    with pytest.raises(ModelError, match="'num_class' is not an argument.*'num_classes'"):
        create_model(TINY, num_class=3)


def test_list_models_has_the_paper_family_and_cpu_models():
    names = list_models()
    for name in ["ViT_small_patch16_224", "ViT_base_patch16_224", "ViT_base_patch16_384",
                 "ViT_base_patch32_224", "ViT_base_patch32_384", "ViT_large_patch16_224",
                 "ViT_large_patch16_384", "ViT_large_patch32_384", "ViT_huge_patch14_224", TINY]:
        assert name in names
    assert list_models("huge") == ["ViT_huge_patch14_224"]


def test_the_transfer_experiments_larger_pair_has_five_times_the_parameters_of_the_small():
    """ViT_mini_patch4_16 and ResNet20x2 (twice the channels, BiT's 'x2') are within 2 % of
    each other in size, as ViT_tiny_patch4_16 and ResNet20 are within 33 %."""
    sizes = {name: count_parameters(create_model(name, num_classes=10)) for name in
             ("ViT_tiny_patch4_16", "ResNet20", "ViT_mini_patch4_16", "ResNet20x2")}
    assert sizes == {"ViT_tiny_patch4_16": 205_898, "ResNet20": 274_042,
                     "ViT_mini_patch4_16": 1_069_962, "ResNet20x2": 1_087_722}
    wide = create_model("ResNet20x2", num_classes=10)
    assert wide.num_features == 128 and wide(_images(2, (16, 16))).shape == [2, 10]
    assert "ViT_mini_patch4_16" in list_models("mini")
    with pytest.raises(ModelError, match="ResNet width 0 must be a positive whole number"):
        create_model("ResNet20", width=0)
