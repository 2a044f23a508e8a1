"""PaddleClas's published ViT weights load by name: the state-dict layout is theirs."""

import numpy as np
import paddle

from vit.models import create_model
from vit.models.weights import load_pretrained


def paddleclas_vit_state_dict(depth, dim, hidden, patch, channels, tokens, classes, seed=0):
    """A state dict laid out as PaddleClas's ViT `.pdparams`, written from their key scheme
    (ppcls/arch/backbone/model_zoo/vision_transformer.py), not from our model."""
    rng = np.random.default_rng(seed)

    def tensor(*shape):
        return rng.standard_normal(shape).astype("float32")

    state = {"pos_embed": tensor(1, tokens, dim), "cls_token": tensor(1, 1, dim),
             "patch_embed.proj.weight": tensor(dim, channels, patch, patch),
             "patch_embed.proj.bias": tensor(dim)}
    for i in range(depth):
        prefix = f"blocks.{i}."
        # Paddle's Linear stores weights as [in, out]
        state.update({
            prefix + "norm1.weight": tensor(dim), prefix + "norm1.bias": tensor(dim),
            prefix + "attn.qkv.weight": tensor(dim, 3 * dim), prefix + "attn.qkv.bias": tensor(3 * dim),
            prefix + "attn.proj.weight": tensor(dim, dim), prefix + "attn.proj.bias": tensor(dim),
            prefix + "norm2.weight": tensor(dim), prefix + "norm2.bias": tensor(dim),
            prefix + "mlp.fc1.weight": tensor(dim, hidden), prefix + "mlp.fc1.bias": tensor(hidden),
            prefix + "mlp.fc2.weight": tensor(hidden, dim), prefix + "mlp.fc2.bias": tensor(dim),
        })
    state.update({"norm.weight": tensor(dim), "norm.bias": tensor(dim),
                  "head.weight": tensor(dim, classes), "head.bias": tensor(classes)})
    return state


def test_a_paddleclas_state_dict_loads_key_for_key(tmp_path):
    """Through the project's own loader, which refuses any key or shape that differs: nothing
    is renamed or adapted, every tensor arrives as it was saved."""
    model = create_model("ViT_tiny_patch4_16", num_classes=10)
    state = paddleclas_vit_state_dict(depth=6, dim=64, hidden=128, patch=4, channels=3,
                                      tokens=17, classes=10)
    paddle.save({key: paddle.to_tensor(value) for key, value in state.items()},
                str(tmp_path / "ViT_tiny_pretrained.pdparams"))
    assert load_pretrained(model, tmp_path / "ViT_tiny_pretrained.pdparams") == []
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), state[key])


def test_vit_base_384_has_paddleclas_keys_and_shapes():
    with paddle.LazyGuard():
        model = create_model("ViT_base_patch16_384")
    state = paddleclas_vit_state_dict(depth=0, dim=768, hidden=3072, patch=16, channels=3,
                                      tokens=577, classes=1000)
    ours = {key: list(value.shape) for key, value in model.state_dict().items()}
    for key, value in state.items():
        assert ours[key] == list(value.shape), key
    blocks = {key for key in ours if key.startswith("blocks.")}
    assert len(blocks) == 12 * 12 and "blocks.11.mlp.fc2.bias" in blocks
