"""Published weights by name, with no network: a loopback server stands in for PaddleClas's and
Google's servers (through VIT_PADDLE_WEIGHTS_MIRROR), and a prepared offline cache for the
Hugging Face hub."""

import json

import numpy as np
import paddle
import pytest

from conftest import assert_one_line_error, run_tool
from test_download import server  # noqa: F401  (the loopback server fixture)
from vit import CheckpointError, ModelError, create_model, list_pretrained
from vit.models.pretrained_registry import PRETRAINED, find_weights


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty weights cache, and a home folder without PaddleClas's cache."""
    monkeypatch.setenv("VIT_PADDLE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "cache"


def served_weights(server, model_name, seed=0):
    """Random weights of `model_name` in PaddleClas's layout, served where the mirror maps the
    registry's URL; returns the model they came from."""
    paddle.seed(seed)
    with paddle.utils.unique_name.guard():
        source = create_model(model_name)
    source.eval()
    entry = find_weights(model_name)
    path = entry.url.split("bcebos.com", 1)[1]
    buffer = __import__("io").BytesIO()
    paddle.save(source.state_dict(), buffer)
    payload = buffer.getvalue()
    server.files[path] = (payload, len(payload))
    return source, entry


def test_the_registry_lists_every_published_set_by_name():
    names = list_pretrained()
    assert len(names) == sum(len(entries) for entries in PRETRAINED.values()) >= 25
    paddleclas = [n for n in names if n.endswith(".paddleclas_in1k")]
    assert sorted(n.split(".")[0] for n in paddleclas) == sorted([
        "ViT_small_patch16_224", "ViT_base_patch16_224", "ViT_base_patch16_384",
        "ViT_base_patch32_384", "ViT_large_patch16_224", "ViT_large_patch16_384",
        "ViT_large_patch32_384"])
    entry = find_weights("ViT_base_patch16_384")
    assert entry.tag == "paddleclas_in1k" and entry.image_size == 384 and entry.crop_pct == 1.0
    assert entry.url.endswith("/dygraph/ViT_base_patch16_384_pretrained.pdparams")
    names_1k = entry.class_names()
    assert len(names_1k) == 1000 and names_1k[:2] == ["tench", "goldfish"]
    assert find_weights("ViT_base_patch16_224.orig_in21k").num_classes == 21843
    with pytest.raises(ModelError, match="no weights tagged 'in21k'; did you mean"):
        find_weights("ViT_base_patch16_224.in21k")
    with pytest.raises(ModelError, match="ViT_tiny_patch4_16 has no published weights"):
        create_model("ViT_tiny_patch4_16", pretrained=True)
    listed = run_tool("convert", "--list")
    assert listed.returncode == 0 and "ViT_base_patch16_384.paddleclas_in1k" in listed.stdout
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()}
    for model, top1 in (("ViT_Ti_patch16_224", "75.45%"), ("ViT_S_patch16_224", "81.40%")):
        assert rows[f"{model}.timm_augreg_in21k_ft_in1k"][1:3] == ["(default)", "224"]
        assert top1 in rows[f"{model}.timm_augreg_in21k_ft_in1k"]
        assert f"{model}.augreg_in21k_ft_in1k" in rows and f"{model}.augreg_in21k" in rows


def test_weights_by_name_download_once_cache_and_refuse_a_damaged_copy(home, server,
                                                                       monkeypatch):
    """`create_model(name, pretrained=True)`: PaddleClas's file (of its smallest ViT, to keep
    the suite quick) through the mirror, into the cache, equal logits; a new class count gets a zero head from the cached file; with the
    server gone the cache serves; a truncated cache file is never loaded."""
    source, entry = served_weights(server, "ViT_small_patch16_224")
    requests, original = [], server.RequestHandlerClass.do_GET

    def counting(handler):
        requests.append(handler.path)
        return original(handler)
    monkeypatch.setattr(server.RequestHandlerClass, "do_GET", counting)
    monkeypatch.setenv("VIT_PADDLE_WEIGHTS_MIRROR", server.base)
    images = paddle.to_tensor(np.random.default_rng(0).standard_normal(
        (1, 3, 224, 224)).astype("float32"))
    model = create_model("ViT_small_patch16_224", pretrained=True)
    model.eval()
    with paddle.no_grad():
        np.testing.assert_array_equal(model(images).numpy(), source(images).numpy())
    cached = home / "ViT_small_patch16_224" / "ViT_small_patch16_224_pretrained.pdparams"
    assert cached.is_file() and cached.with_name(cached.name + ".sha256").is_file()
    server.shutdown()  # from now on only the cache can serve: the server refuses at once
    server.server_close()
    ten = create_model("ViT_small_patch16_224", pretrained=True, num_classes=10)
    assert not ten.head.weight.numpy().any() and list(ten.head.weight.shape) == [768, 10]
    np.testing.assert_array_equal(ten.blocks[5].attn.qkv.weight.numpy(),
                                  source.blocks[5].attn.qkv.weight.numpy())
    assert len(requests) == 1  # downloaded once
    with open(cached, "r+b") as handle:  # a copy cut short, as by a full disk
        handle.truncate(cached.stat().st_size // 2)
    with pytest.raises(CheckpointError) as error:
        create_model("ViT_small_patch16_224", pretrained=True)
    assert f"{server.base}/dygraph/ViT_small_patch16_224_pretrained.pdparams" in str(error.value)
    assert str(cached) in str(error.value)  # where to put the file by hand


def test_the_offline_error_is_one_line_naming_the_url_and_the_path(home, tmp_path):
    result = run_tool("infer", "--pretrained", "ViT_small_patch16_224", "--images", tmp_path,
                      env={"VIT_PADDLE_HOME": str(home), "HOME": str(tmp_path / "home"),
                           "VIT_PADDLE_WEIGHTS_MIRROR": "http://127.0.0.1:9"})
    line = assert_one_line_error(result, "cannot download http://127.0.0.1:9/dygraph/"
                                 "ViT_small_patch16_224_pretrained.pdparams", after_log=True)
    assert str(home / "ViT_small_patch16_224" / "ViT_small_patch16_224_pretrained.pdparams") in line


def offline_hub_snapshot(tmp_path, monkeypatch, repo: str):
    """The folder of `repo`'s snapshot in a Hub cache laid out by hand (what
    `huggingface_hub` downloads into), read with HF_HUB_OFFLINE=1: fill it before use."""
    cache = tmp_path / "hub"
    snapshot = cache / f"models--{repo.replace('/', '--')}" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    return snapshot


def test_a_hub_repo_resolves_through_huggingface_hub_from_an_offline_cache(tmp_path, monkeypatch):
    """The Hub's own cache layout, prepared by hand, read with HF_HUB_OFFLINE=1: the folder
    converts from transformers' names and loads."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    config = transformers.ViTConfig(hidden_size=768, num_hidden_layers=1, num_attention_heads=12,
                                    intermediate_size=3072, image_size=224, patch_size=16,
                                    num_labels=1000, layer_norm_eps=1e-12)
    torch.manual_seed(0)
    reference = transformers.ViTForImageClassification(config).eval()
    entry = find_weights("ViT_base_patch16_224.hf_in21k_ft_in1k")
    snapshot = offline_hub_snapshot(tmp_path, monkeypatch, entry.hub)
    reference.save_pretrained(snapshot)
    model = create_model("ViT_base_patch16_224", pretrained="hf_in21k_ft_in1k", depth=1,
                         epsilon=1e-12)
    model.eval()
    images = np.random.default_rng(1).standard_normal((2, 3, 224, 224)).astype("float32")
    with paddle.no_grad():
        ours = model(paddle.to_tensor(images)).numpy()
    theirs = reference(pixel_values=torch.from_numpy(images)).logits.detach().numpy()
    assert np.abs(ours - theirs).max() < 1e-4
    saved = json.loads((snapshot / "config.json").read_text())
    assert saved["num_hidden_layers"] == 1


def test_vit_ti_by_name_is_timms_augreg_file_from_the_hub(home, tmp_path, monkeypatch):
    """`create_model("ViT_Ti_patch16_224", pretrained=True)`: the default entry is timm's hub
    repo with its preprocessing and top-1; its model.safetensors (random weights in timm's
    layout, from the offline Hub cache) converts and loads into the registered model exactly."""
    from safetensors.numpy import save_file

    entry = find_weights("ViT_Ti_patch16_224")
    assert (entry.tag, entry.hub, entry.source) == (
        "timm_augreg_in21k_ft_in1k", "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k", "timm")
    assert (entry.interpolation, entry.crop_pct, entry.mean, entry.reported_top1) == (
        "bicubic", 0.9, (0.5, 0.5, 0.5), 0.75452)
    paddle.seed(7)
    with paddle.utils.unique_name.guard():
        source = create_model("ViT_Ti_patch16_224")
    source.eval()
    snapshot = offline_hub_snapshot(tmp_path, monkeypatch, entry.hub)
    (snapshot / "config.json").write_text(json.dumps({"architecture": "vit_tiny_patch16_224"}))
    timm_layout = {k: v.numpy().T if v.ndim == 2 else v.numpy()  # PyTorch's Linear [out, in]
                   for k, v in source.state_dict().items()}
    save_file({k: np.ascontiguousarray(v) for k, v in timm_layout.items()},
              str(snapshot / "model.safetensors"))
    model = create_model("ViT_Ti_patch16_224", pretrained=True)
    model.eval()
    images = paddle.to_tensor(np.random.default_rng(2).standard_normal(
        (2, 3, 224, 224)).astype("float32"))
    with paddle.no_grad():
        np.testing.assert_array_equal(model(images).numpy(), source(images).numpy())


def test_vit_s_augreg_npz_downloads_through_the_mirror_and_gives_the_references_logits(
        home, server, monkeypatch, tmp_path):
    """Google's AugReg .npz of ViT-S/16 by tag, through the loopback mirror: the file (one block
    of random weights in the original layout, to keep it quick) converts into the registered
    model with the logits of the PyTorch reference."""
    torch = pytest.importorskip("torch")
    from torch_reference import TorchViT, to_google_npz

    entry = find_weights("ViT_S_patch16_224.augreg_in21k_ft_in1k")
    assert entry.url.endswith("/augreg/S_16-i21k-300ep-lr_0.001-aug_light1-wd_0.03-do_0.0-sd_0.0"
                              "--imagenet2012-steps_20k-lr_0.03-res_224.npz")
    reference = TorchViT(img=224, patch=16, dim=384, depth=1, heads=6, mlp=1536, classes=1000)
    reference.eval()
    to_google_npz(reference, tmp_path / "s16.npz")
    payload = (tmp_path / "s16.npz").read_bytes()
    server.files[entry.url.split("storage.googleapis.com", 1)[1]] = (payload, len(payload))
    monkeypatch.setenv("VIT_PADDLE_WEIGHTS_MIRROR", server.base)
    model = create_model("ViT_S_patch16_224", pretrained="augreg_in21k_ft_in1k", depth=1)
    model.eval()
    images = np.random.default_rng(3).standard_normal((2, 3, 224, 224)).astype("float32")
    with paddle.no_grad(), torch.no_grad():
        difference = model(paddle.to_tensor(images)).numpy() - \
            reference(torch.from_numpy(images)).numpy()
    assert np.abs(difference).max() <= 1e-4
    assert (home / "ViT_S_patch16_224" / entry.file_name).is_file()


def test_infer_by_name_predicts_imagenet_classes_from_a_prefilled_cache(home, tmp_path):
    """`tools/infer.py --pretrained NAME --images`: the registry's model, class names and
    preprocessing, from weights a user placed in the cache by hand."""
    from PIL import Image

    from vit.engine.inference import load_published, predict_paths

    paddle.seed(3)
    with paddle.utils.unique_name.guard():
        source = create_model("ViT_small_patch16_224")
    cached = home / "ViT_small_patch16_224" / "ViT_small_patch16_224_pretrained.pdparams"
    cached.parent.mkdir(parents=True)
    paddle.save(source.state_dict(), str(cached))
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
                    ).save(photo)
    result = run_tool("infer", "--pretrained", "ViT_small_patch16_224", "--images", photo,
                      "--output", tmp_path / "out",
                      env={"VIT_PADDLE_HOME": str(home), "HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "out" / "predictions.json").read_text())
    loaded = load_published("ViT_small_patch16_224")
    assert loaded.preprocessing.crop_pct == 0.875 and loaded.preprocessing.image_size == 224
    expected = predict_paths(loaded, [photo])["rows"][0]["top"]
    assert [name for name, _ in rows[0]["top"]] == [name for name, _ in expected]
    imagenet = find_weights("ViT_small_patch16_224").class_names()
    assert all(name in imagenet for name, _ in rows[0]["top"])
    assert cached.with_name(cached.name + ".sha256").is_file()  # checked from now on


def test_a_file_in_paddleclas_cache_is_used_and_checked_from_then_on(home, tmp_path,
                                                                     monkeypatch):
    from vit.models.pretrained import resolve_weights

    monkeypatch.setenv("VIT_PADDLE_WEIGHTS_MIRROR", "http://127.0.0.1:9")  # nothing answers
    theirs = tmp_path / "home" / ".paddleclas" / "weights" / \
        "ViT_base_patch32_384_pretrained.pdparams"
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(b"weights PaddleClas downloaded")
    resolved = resolve_weights(True, "ViT_base_patch32_384")  # no server: nothing is fetched
    assert resolved.path == theirs and resolved.fmt == "paddle"
    assert theirs.with_name(theirs.name + ".sha256").is_file()
    theirs.write_bytes(b"changed since")  # now differs from the hash recorded at first use
    with pytest.raises(CheckpointError, match="cannot download http://127.0.0.1:9/"):
        resolve_weights(True, "ViT_base_patch32_384")


def test_weights_by_url_are_downloaded_once_into_the_cache(home, server):
    import io

    paddle.seed(5)
    with paddle.utils.unique_name.guard():
        source = create_model("ViT_tiny_patch4_16", num_classes=10)
    buffer = io.BytesIO()
    paddle.save(source.state_dict(), buffer)
    server.files["/mine/tiny.pdparams"] = (buffer.getvalue(), len(buffer.getvalue()))
    url = f"{server.base}/mine/tiny.pdparams"
    model = create_model("ViT_tiny_patch4_16", pretrained=url)  # the file's 10 classes kept
    np.testing.assert_array_equal(model.head.weight.numpy(), source.head.weight.numpy())
    cached = list((home / "url").rglob("tiny.pdparams"))
    assert len(cached) == 1 and cached[0].with_name("tiny.pdparams.sha256").is_file()
    server.shutdown()  # from now on the cache serves
    again = create_model("ViT_tiny_patch4_16", pretrained=url, num_classes=3)
    assert not again.head.weight.numpy().any()
