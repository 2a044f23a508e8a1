"""Converting published weights: timm, Hugging Face and Google .npz checked against the source
implementation's own forward pass (torch is the reference), 2-D position-embedding resampling
equal to timm's, a malicious torch file, and the convert tool feeding fine-tuning."""

import numpy as np
import paddle
import pytest

from conftest import run_tool
from test_weights import _Exploit
from vit import CheckpointError
from vit.models import VisionTransformer, create_model
from vit.models.convert import convert_state, read_weights
from vit.models.weights import (adapt_state, load_pretrained, load_state_dict_strict,
                                resample_pos_embed)
from vit.serialization import load_safetensors, save

torch = pytest.importorskip("torch", reason="torch (CPU) is the reference for the converters; "
                                            "pip install torch==2.13.0")

TOLERANCE = 1e-4


def paddle_logits(state, args, images):
    model = VisionTransformer(**{k: v for k, v in args.items() if k != "class_names"})
    model.eval()
    adapted, notes = adapt_state(state, model)
    assert notes == []  # nothing had to be adapted: the conversion is exact
    load_state_dict_strict(model, adapted, "the converted weights")
    with paddle.no_grad():
        return model(paddle.to_tensor(images)).numpy()


def images(batch=3, size=16, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype("float32")


@pytest.fixture
def reference():
    from torch_reference import TorchViT

    model = TorchViT()
    model.eval()
    return model


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_timm_state_dict_converts_to_the_same_logits(tmp_path, reference, suffix):
    path = tmp_path / f"timm{suffix}"
    if suffix == ".pth":
        torch.save(reference.state_dict(), path)
    else:
        from safetensors.torch import save_file

        save_file(reference.state_dict(), str(path))
    state, meta = read_weights(path)
    converted, args = convert_state(state, "timm", meta, num_heads=4)
    x = images()
    expected = reference(torch.from_numpy(x)).detach().numpy()
    assert np.abs(paddle_logits(converted, args, x) - expected).max() <= TOLERANCE


@pytest.mark.parametrize("name,width,heads", [("ViT_Ti_patch16_224", 192, 3),
                                              ("ViT_S_patch16_224", 384, 6)])
def test_timms_vit_ti_and_s_convert_into_the_registered_models(tmp_path, name, width, heads):
    """timm's vit_tiny_patch16_224 and vit_small_patch16_224 at full size, as the hub's
    model.safetensors holds them: the shapes name the registered model (its heads too), and
    the logits are the reference's."""
    from safetensors.torch import save_file
    from torch_reference import TorchViT

    from vit.models import model_args

    reference = TorchViT(img=224, patch=16, dim=width, depth=12, heads=heads, mlp=4 * width,
                         classes=1000, seed=4)
    reference.eval()
    save_file(reference.state_dict(), str(tmp_path / "model.safetensors"))
    converted, args = convert_state(*read_weights(tmp_path / "model.safetensors"))
    registered = model_args(name)
    assert {key: args[key] for key in registered} == registered
    x = images(batch=2, size=224)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    assert np.abs(paddle_logits(converted, args, x) - expected).max() <= TOLERANCE


def test_google_npz_with_pre_logits_converts_to_the_same_logits(tmp_path):
    from torch_reference import TorchViT, to_google_npz

    model = TorchViT(representation=24, seed=1)
    model.eval()
    to_google_npz(model, tmp_path / "ViT-tiny.npz")
    state, meta = read_weights(tmp_path / "ViT-tiny.npz")
    converted, args = convert_state(state, None, meta)
    assert args["num_heads"] == 4 and args["representation_size"] == 24
    x = images()
    expected = model(torch.from_numpy(x)).detach().numpy()
    assert np.abs(paddle_logits(converted, args, x) - expected).max() <= TOLERANCE


def test_an_imagenet21k_npz_fine_tunes_into_a_model_without_pre_logits(tmp_path):
    """Google's ImageNet-21k checkpoints carry a representation layer that the paper drops when
    fine-tuning: it is dropped with a note, the head starts from zeros, and the backbone is
    exactly the same weights."""
    from torch_reference import TorchViT, to_google_npz

    to_google_npz(TorchViT(representation=24, seed=1), tmp_path / "in21k.npz")
    converted, args = convert_state(*read_weights(tmp_path / "in21k.npz"))
    target = VisionTransformer(**{**args, "representation_size": None, "num_classes": 3})
    notes = load_pretrained(target, tmp_path / "in21k.npz")
    assert notes == ["pre-logits layer (24 wide) dropped: the model has none, as in the "
                     "paper's fine-tuning", "head re-initialised to zeros for 3 classes"]
    ours = target.state_dict()
    backbone = [k for k in converted if not k.startswith(("pre_logits.", "head."))]
    assert sorted(ours) == sorted(backbone + ["head.weight", "head.bias"])
    for key in backbone:
        np.testing.assert_array_equal(ours[key].numpy(), converted[key], err_msg=key)
    assert not target.head.weight.numpy().any()


def test_the_arguments_read_off_weights_are_the_registered_models(tmp_path):
    """Shapes do not show heads, epsilon or the attention scale: the registry row of the same
    shapes does (PaddleClas's ViT_small: 8 heads, epsilon 1e-5, scale 768^-0.5)."""
    from vit.models import model_args
    from vit.models.convert import infer_model_args

    for name in ("ViT_small_patch16_224", "ViT_base_patch32_224", "ViT_tiny_patch4_16",
                 "ViT_tiny_patch4_32", "ViT_Ti_patch16_224", "ViT_S_patch16_224"):
        with paddle.utils.unique_name.guard():
            model = create_model(name)
        implied = infer_model_args({k: v.numpy() for k, v in model.state_dict().items()})
        registered = {"num_classes": 1000, "representation_size": None, "in_chans": 3,
                      "qk_scale": None, **model_args(name)}
        assert {k: implied[k] for k in registered} == registered, name


def _hf_model(pooler=False):
    transformers = pytest.importorskip("transformers", reason="transformers is the reference "
                                       "for Hugging Face checkpoints; pip install transformers")
    config = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                    intermediate_size=64, image_size=16, patch_size=4,
                                    num_labels=3, id2label={0: "cat", 1: "dog", 2: "fox"},
                                    label2id={"cat": 0, "dog": 1, "fox": 2})
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "layernorm" in name or name.endswith("bias"):
                param.uniform_(-0.5, 1.5)
    model.eval()
    return model


def test_hugging_face_folder_with_hub_names_converts(tmp_path):
    model = _hf_model()
    model.save_pretrained(tmp_path / "hf")  # the Hub's (transformers-4) names on disk
    state, meta = read_weights(tmp_path / "hf")
    assert any(".attention.attention.query." in k for k in state)
    converted, args = convert_state(state, None, meta)
    assert args["class_names"] == ["cat", "dog", "fox"] and args["epsilon"] == 1e-12
    x = images()
    expected = model(pixel_values=torch.from_numpy(x)).logits.detach().numpy()
    assert np.abs(paddle_logits(converted, args, x) - expected).max() <= TOLERANCE


def test_hugging_face_transformers_5_names_convert(tmp_path):
    from safetensors.torch import save_file

    model = _hf_model()
    if not any(".q_proj." in k for k in model.state_dict()):
        pytest.skip("this transformers is older than 5 and holds the Hub's names in memory")
    folder = tmp_path / "hf5"
    model.config.save_pretrained(folder)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    state, meta = read_weights(folder)
    assert any(".q_proj." in k for k in state) and not any(".query." in k for k in state)
    converted, args = convert_state(state, "hf", meta)
    x = images(seed=2)
    expected = model(pixel_values=torch.from_numpy(x)).logits.detach().numpy()
    assert np.abs(paddle_logits(converted, args, x) - expected).max() <= TOLERANCE


def test_vit_b16_from_224_loads_into_384_as_timm_resamples(tmp_path):
    from torch_reference import timm_resample_abs_pos_embed

    with paddle.utils.unique_name.guard():
        source = create_model("ViT_base_patch16_224")
    save(source.state_dict(), tmp_path / "b16_224.pdparams")
    target = create_model("ViT_base_patch16_384", num_classes=1000)
    notes = load_pretrained(target, tmp_path / "b16_224.pdparams")
    assert any("resampled from 196 to 576" in n for n in notes)
    expected = timm_resample_abs_pos_embed(torch.from_numpy(source.pos_embed.numpy()), (24, 24))
    assert np.abs(target.pos_embed.numpy() - expected.numpy()).max() <= 1e-5
    np.testing.assert_array_equal(target.pos_embed.numpy()[:, 0], source.pos_embed.numpy()[:, 0])
    target.eval()
    with paddle.no_grad():
        assert target(paddle.rand([1, 3, 384, 384])).shape == [1, 1000]


def test_resampling_non_square_grids_and_shrinking_match_timm():
    from torch_reference import F

    rng = np.random.default_rng(0)
    grid = rng.standard_normal((1, 1 + 6 * 6, 8)).astype("float32")
    for new in ((9, 12), (4, 4)):
        ours = resample_pos_embed(grid, new)
        body = torch.from_numpy(grid[:, 1:]).reshape(1, 6, 6, 8).permute(0, 3, 1, 2)
        theirs = F.interpolate(body, size=new, mode="bicubic", antialias=True)
        theirs = theirs.permute(0, 2, 3, 1).reshape(1, -1, 8).numpy()
        assert np.abs(ours[:, 1:] - theirs).max() <= 1e-5, new


def test_a_malicious_torch_file_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"w": _Exploit(marker)}, path)
    with pytest.raises(CheckpointError, match="cannot read .* safely"):
        read_weights(path)
    assert not marker.exists()


def test_convert_tool_writes_safetensors_that_fine_tuning_loads(tmp_path):
    from torch_reference import TorchViT, to_google_npz

    to_google_npz(TorchViT(dim=64, depth=6, heads=4, mlp=128, classes=1000, seed=3),
                  tmp_path / "src.npz")
    result = run_tool("convert", tmp_path / "src.npz", tmp_path / "tiny.safetensors")
    assert result.returncode == 0, result.stderr
    assert "embed_dim=64" in result.stdout and "num_heads=4" in result.stdout
    _, meta = load_safetensors(tmp_path / "tiny.safetensors")
    assert meta["source_format"] == "jax"
    run = run_tool("train", "--pretrained", tmp_path / "tiny.safetensors",
                   "-o", "data.train_fraction=0.1", "-o", "train.epochs=1",
                   "-o", "optim.warmup_epochs=0", "-o", f"output.dir={tmp_path / 'out'}",
                   "-o", "output.run_name=ft")
    assert run.returncode == 0, run.stderr
    assert "head re-initialised to zeros for 10 classes" in run.stderr
    assert (tmp_path / "out" / "ft" / "checkpoints" / "best.pdparams").is_file()
