"""Fine-tuning: a frozen backbone whose features are computed once trains the head to what
the slow path reaches, and published weights bring their own preprocessing unless the config
sets it."""

import numpy as np
import pytest

from vit.config import load_config, load_default_config
from vit.engine.builders import with_weights_preprocessing
from vit.errors import ConfigError
from vit.serialization import safe_load

NO_AUGMENTATION = ["augment.random_resized_crop=false", "augment.rand_augment_n=0"]


def test_cached_features_train_the_head_as_the_slow_path_does(tmp_path):
    from vit.engine.trainer import train

    common = ["optim.warmup_epochs=0", f"output.dir={tmp_path}"]
    backbone = train(load_default_config([*common, "train.epochs=6",
                                          "output.run_name=backbone"]))
    results = {}
    for cached in (True, False):
        run = train(load_default_config([
            *common, *NO_AUGMENTATION, "train.epochs=3", "train.freeze=backbone",
            "data.train_fraction=0.25",
            f"train.cache_features={str(cached).lower()}", f"output.run_name=head-{cached}",
            f"model.pretrained={backbone.best_checkpoint}"]))
        results[cached] = (run.test, safe_load(run.run_dir / "checkpoints" / "epoch_003.pdparams"))
    (fast, fast_weights), (slow, slow_weights) = results[True], results[False]
    assert fast["top1"] == slow["top1"] and fast["top1"] > 0.2  # chance is 0.1
    assert fast["loss"] == pytest.approx(slow["loss"], abs=1e-4)
    np.testing.assert_allclose(fast_weights["head.weight"], slow_weights["head.weight"],
                               atol=1e-5)
    original = safe_load(backbone.best_checkpoint)
    for key in ("pos_embed", "blocks.3.attn.qkv.weight", "norm.weight"):  # frozen: unchanged
        np.testing.assert_array_equal(fast_weights[key], original[key])


def test_published_weights_bring_their_preprocessing_where_the_config_leaves_it():
    bare = load_config(None, ["model.name=ViT_base_patch16_224",
                              "model.pretrained=ViT_base_patch16_224.paddleclas_in1k"])
    taken = with_weights_preprocessing(bare)
    assert taken.augment.crop_pct == 0.875 and taken.augment.interpolation == "bilinear"
    timm = with_weights_preprocessing(load_config(None, [
        "model.name=ViT_base_patch16_224", "augment.crop_pct=1.0",
        "model.pretrained=ViT_base_patch16_224.timm_augreg_in21k_ft_in1k"]))
    assert timm.augment.interpolation == "bicubic" and timm.augment.crop_pct == 1.0  # set: kept
    assert with_weights_preprocessing(load_default_config()) == load_default_config()
    with pytest.raises(ConfigError, match="are weights of ViT_base_patch16_384, but model.name "
                                          "is ViT_tiny_patch4_16"):
        with_weights_preprocessing(load_default_config(["model.pretrained=ViT_base_patch16_384"]))


@pytest.mark.parametrize("name", ["finetune_folder", "vit_base_patch16_384_finetune"])
def test_the_fine_tuning_configs_say_what_they_do(name):
    from vit.config import shipped_configs

    config = load_config(shipped_configs()[name])
    assert config.model.pretrained and config.model.zero_head
    if name == "finetune_folder":
        assert config.train.freeze == "backbone" and config.data.source == "folder"
    else:  # the paper's recipe: SGD with momentum, no weight decay, clipping at 1, cosine
        assert (config.optim.name, config.optim.momentum, config.optim.weight_decay,
                config.optim.grad_clip, config.optim.schedule) == ("sgd", 0.9, 0.0, 1.0, "cosine")
        assert config.data.batch_size * 8 == 512  # per GPU, on the 8 GPUs its header names
