"""Our ViT equals Hugging Face's ViTForImageClassification with the same weights (copied by ViT.from_hf), in
float64: the logits, the images' gradient and every parameter's gradient; to_hf and save_pretrained round trips.
The reference is tiny and random, never downloaded: 12 x 12 images in 3 x 3 patches of side 4, D = 24 in 3
heads, an MLP of width 40 (not 4D, so a swapped MLP shape cannot pass), two layers, 5 classes. Every weight
is redrawn at unit scale (HF's initialiser gives position embeddings of 0.02 and LayerNorms at exactly 1
and 0, under which a wrong order of patches, positions or the class token, or a swapped LayerNorm, could
hide in rounding); the controls at the end show that such mistakes do change the logits.

Tolerances: float64 carries about 16 digits; the two models add the same terms in different orders (HF's
eager attention against the fused kernel), so logits agree to about 1e-15 relative and gradients (longer
sums) to about 1e-13; the bars leave a factor of about 1000."""

import sys

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from milestones.core.errors import UserError
from milestones.transformers.vit.model import ViT, ViTConfig, hf_names, uses_legacy_names

transformers = pytest.importorskip("transformers")

TIGHT = dict(rtol=1e-12, atol=1e-13)
GRADS = dict(rtol=1e-10, atol=1e-12)
IMAGE, PATCH, CHANNELS, CLASSES, DEPTH = 12, 4, 3, 5, 2


def hf_model(seed=0, eps=1e-6):
    torch.manual_seed(seed)
    config = transformers.ViTConfig(image_size=IMAGE, patch_size=PATCH, num_channels=CHANNELS, num_labels=CLASSES,
                                    hidden_size=24, num_hidden_layers=DEPTH, num_attention_heads=3,
                                    intermediate_size=40, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                    layer_norm_eps=eps)
    hf = transformers.ViTForImageClassification(config).double().eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.copy_(torch.randn_like(p) * 0.5)  # unit-scale everything: positions, class token, norms, biases
    return hf


def images(batch=4, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, CHANNELS, IMAGE, IMAGE, generator=generator, dtype=torch.float64)


def probe(logits, seed=99):
    """sum(logits * r) with a fixed random r, so that every logit gets its own weight in the gradient."""
    generator = torch.Generator().manual_seed(seed)
    return (logits * torch.randn(logits.shape, generator=generator, dtype=logits.dtype)).sum()


def test_the_name_map_covers_every_parameter_on_both_sides():
    hf = hf_model()
    ours = ViT.from_hf(hf)
    names = hf_names(DEPTH, legacy=uses_legacy_names(hf))  # transformers 5.x renamed the layers
    assert sorted(names) == sorted(n for n, _ in ours.named_parameters())
    assert sorted(names.values()) == sorted(n for n, _ in hf.named_parameters())
    assert ours.config == ViTConfig(image_size=IMAGE, patch_size=PATCH, in_channels=CHANNELS, n_classes=CLASSES,
                                    dim=24, depth=DEPTH, heads=3, mlp_dim=40, layer_norm_eps=1e-6)


@pytest.mark.parametrize("eps", [1e-6, 1e-12])
def test_logits_and_every_gradient_equal_hugging_face(eps):
    hf = hf_model(eps=eps)
    ours = ViT.from_hf(hf)
    x_hf, x_ours = images().requires_grad_(), images().requires_grad_()
    reference = hf(pixel_values=x_hf).logits
    logits = ours(x_ours)
    assert logits.shape == (4, CLASSES)
    assert_close(logits, reference, **TIGHT)
    probe(reference).backward()
    probe(logits).backward()
    assert_close(x_ours.grad, x_hf.grad, **GRADS)
    theirs = dict(hf.named_parameters())
    for mine, name in hf_names(DEPTH, legacy=uses_legacy_names(hf)).items():
        grad = ours.get_parameter(mine).grad
        assert grad is not None and grad.abs().sum() > 0, f"{mine} got no gradient"
        assert_close(grad, theirs[name].grad, **GRADS, msg=f"{mine} vs {name}")


def test_the_cross_entropy_loss_equals_hugging_face_with_labels():
    hf = hf_model()
    ours = ViT.from_hf(hf)
    labels = torch.tensor([0, 3, 4, 1])
    assert_close(F.cross_entropy(ours(images()), labels), hf(pixel_values=images(), labels=labels).loss, **TIGHT)


def test_to_hf_round_trip():
    torch.manual_seed(3)
    ours = ViT(ViTConfig(image_size=IMAGE, patch_size=PATCH, in_channels=CHANNELS, n_classes=CLASSES, dim=24,
                         depth=DEPTH, heads=3, mlp_dim=40)).double().eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.copy_(torch.randn_like(p) * 0.5)  # our head and class token start at zero
    hf = ours.to_hf()
    assert isinstance(hf, transformers.ViTForImageClassification) and not hf.training
    assert_close(hf(pixel_values=images()).logits, ours(images()), **TIGHT)
    back = ViT.from_hf(hf)
    assert back.config == ours.config
    for (name, mine), (_, again) in zip(ours.named_parameters(), back.named_parameters(), strict=True):
        assert torch.equal(mine, again), name


def test_save_pretrained_folder_round_trip(tmp_path):
    hf = hf_model()
    hf.save_pretrained(tmp_path)
    ours = ViT.from_hf(tmp_path)
    reloaded = transformers.ViTForImageClassification.from_pretrained(tmp_path)  # in the dtype its loader picks
    theirs = dict(hf.named_parameters())
    for mine, name in hf_names(DEPTH, legacy=uses_legacy_names(reloaded)).items():
        assert torch.equal(ours.get_parameter(mine), reloaded.get_parameter(name)), mine
        assert torch.equal(ours.get_parameter(mine), theirs[name].to(reloaded.dtype)), mine
    x = images().to(reloaded.dtype)
    assert_close(ours.eval()(x), reloaded.eval()(pixel_values=x).logits)  # the default tolerances of that dtype


def test_training_mode_and_dropout_carry_over():
    hf = hf_model()
    hf.config.hidden_dropout_prob = 0.1
    ours = ViT.from_hf(hf.train())
    assert ours.training and ours.config.dropout == 0.1
    back = ours.to_hf()
    assert back.training and back.config.hidden_dropout_prob == 0.1


def test_a_different_architecture_is_refused():
    hf = hf_model()
    hf.config.hidden_act = "gelu_new"
    with pytest.raises(ValueError, match="exact GELU"):
        ViT.from_hf(hf)


def test_a_missing_transformers_is_a_one_line_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now fails
    tiny = ViT(ViTConfig(image_size=8, patch_size=4, n_classes=2, dim=8, depth=1, heads=2, mlp_dim=16))
    with pytest.raises(UserError, match=r"milestones\[test\]"):
        tiny.to_hf()


# --------------------------------------------------------------------------------------- shapes
def test_patches_are_read_row_by_row_and_the_class_token_comes_first():
    """The patch embedding is one linear map per P x P patch, patches in row-major order."""
    torch.manual_seed(0)
    ours = ViT(ViTConfig(image_size=IMAGE, patch_size=PATCH, in_channels=CHANNELS, n_classes=CLASSES, dim=24,
                         depth=1, heads=3, mlp_dim=40)).double()
    x = images()
    tokens = ours.patch_embedding(x)  # (B, 9, 24)
    conv = ours.patch_embedding.projection
    by_hand = [x[:, :, r:r + PATCH, c:c + PATCH].flatten(1) @ conv.weight.flatten(1).T + conv.bias
               for r in range(0, IMAGE, PATCH) for c in range(0, IMAGE, PATCH)]
    assert_close(tokens, torch.stack(by_hand, dim=1), **TIGHT)
    assert ours.position_embedding.shape == (1, 1 + (IMAGE // PATCH) ** 2, 24)


# ----------------------------------------------------------------------- controls: it can fail
def test_controls_wrong_orders_change_the_logits():
    """Each mistake the comparison must catch, made on purpose in a copy of our model, moves the logits by
    far more than the tolerance: the position embeddings shifted by one slot (as if the class token came
    last), the patches' positions assigned column by column, and the first layer's two LayerNorms alike."""
    hf = hf_model()
    x = images()
    reference = hf(pixel_values=x).logits
    mistakes = {
        "positions shifted": lambda m: m.position_embedding.copy_(m.position_embedding.roll(1, dims=1)),
        "columns first": lambda m: m.position_embedding[:, 1:].copy_(  # patch (r, c) gets slot (c, r)'s position
            m.position_embedding[:, 1:].unflatten(1, (IMAGE // PATCH, -1)).transpose(1, 2).flatten(1, 2).clone()),
        "norms swapped": lambda m: [m.blocks[0].attention_norm.weight.copy_(m.blocks[0].mlp_norm.weight.clone()),
                                    m.blocks[0].attention_norm.bias.copy_(m.blocks[0].mlp_norm.bias.clone())],
    }
    for what, mistake in mistakes.items():
        wrong = ViT.from_hf(hf)
        with torch.no_grad():
            mistake(wrong)
        assert (wrong(x) - reference).abs().max() > 1e-3, what
    assert_close(ViT.from_hf(hf)(x), reference, **TIGHT)
