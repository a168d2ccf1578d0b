"""GPT-3's banded attention (model.py) equals dense attention under the band mask, in float64, forward and
backward: against `F.scaled_dot_product_attention` and against the Transformer's written-out attention, for
lengths that are and are not multiples of the band, and bands wider than the sequence. The whole model with
the band off is GPT-2's model (same initial weights, same logits and gradients); with the band on it equals
GPT-2's dense model fed the band mask on the even layers and the causal mask on the odd ones. The banded
model's KV-cache and padded paths agree with its blocked path; without the band it converts to and from
Hugging Face's GPT2LMHeadModel, and with the band it refuses to. Controls show the tests can fail: a band one
wider or narrower, or no band at all, changes the output.

Tolerances: float64 carries about 16 digits; the blocked and dense computations add the same terms in a
different order (and the dense one adds exact zeros for the masked keys), so outputs agree to about 1e-15
and gradients to about 1e-13; the bars leave a factor of 100 or more.
"""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from milestones.transformers.gpt2.model import GPT, GPTConfig
from milestones.transformers.gpt3 import model as gpt3_model
from milestones.transformers.gpt3.model import GPT3, GPT3Config, attention_pattern, band_mask, banded_attention
from milestones.transformers.transformer.model import scaled_dot_product_attention

TIGHT = dict(rtol=1e-12, atol=1e-13)
GRADS = dict(rtol=1e-10, atol=1e-12)
VOCAB, CONTEXT = 37, 40
CASES = [(T, w) for w in (1, 3, 4) for T in (1, 2, 3, 4, 5, 8, 11, 12, 17)] + [(3, 8), (40, 7), (40, 40)]


def qkv(T, seed=0, B=2, H=3, D=5):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, T, D, dtype=torch.float64, generator=generator, requires_grad=True) for _ in range(3)]


def forward_and_grads(attention, q, k, v, probe):
    out = attention(q, k, v)
    grads = torch.autograd.grad((out * probe).sum(), (q, k, v))
    return out, grads


# ------------------------------------------------------------------------------------------ the band
def test_band_mask_is_i_minus_w_below_j_at_most_i():
    for queries, keys, w in [(6, 6, 1), (6, 6, 3), (4, 9, 2), (9, 9, 20)]:
        expected = torch.tensor([[i - w < j <= i for j in range(keys)] for i in range(keys - queries, keys)])
        assert torch.equal(band_mask(queries, keys, w), expected)


@pytest.mark.parametrize("T,w", CASES)
def test_banded_attention_equals_dense_attention_under_the_band_mask(T, w):
    q, k, v = qkv(T)
    probe = torch.randn(q.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    mask = band_mask(T, T, w)
    ours, ours_grads = forward_and_grads(lambda q, k, v: banded_attention(q, k, v, w), q, k, v, probe)
    for reference in (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                      lambda q, k, v: scaled_dot_product_attention(q, k, v, mask)):  # test_transformer.py's
        out, grads = forward_and_grads(reference, q, k, v, probe)
        assert_close(ours, out, **TIGHT)
        for name, mine, theirs in zip("qkv", ours_grads, grads):
            assert_close(mine, theirs, **GRADS, msg=lambda m, name=name: f"grad of {name}: {m}")


@pytest.mark.parametrize("T,w", [(11, 3), (12, 4), (17, 4)])
def test_an_off_by_one_band_or_no_band_is_caught(T, w):
    """The control that makes the test above able to fail: the neighbouring bands give other outputs."""
    q, k, v = qkv(T)
    ours = banded_attention(q, k, v, w)
    for other in (w - 1, w + 1, T):
        dense = F.scaled_dot_product_attention(q, k, v, attn_mask=band_mask(T, T, other))
        assert (ours - dense).abs().max() > 1e-3, f"band {w} and band {other} gave the same output"


# ------------------------------------------------------------------------------------------ the model
def configs(band):
    shared = dict(vocab_size=VOCAB, block_size=CONTEXT, n_layer=4, n_head=2, n_embd=16, embedding_dropout=0.0,
                  attention_dropout=0.0, residual_dropout=0.0)
    return GPTConfig(**shared), GPT3Config(**shared, band=band)


def tokens(T=CONTEXT, seed=2, B=3):
    return torch.randint(0, VOCAB, (B, T), generator=torch.Generator().manual_seed(seed))


def loss_of(logits, seed=3):
    targets = torch.randint(0, VOCAB, logits.shape[:2], generator=torch.Generator().manual_seed(seed))
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def compare_gradients(ours, reference):
    theirs = dict(reference.named_parameters())
    assert set(theirs) == {name for name, _ in ours.named_parameters()}
    for name, p in ours.named_parameters():
        assert_close(p.grad, theirs[name].grad, **GRADS, msg=lambda m, name=name: f"{name}: {m}")


def test_without_the_band_it_is_gpt2():
    gpt2_config, gpt3_config = configs(band=None)
    torch.manual_seed(0)
    gpt2 = GPT(gpt2_config).double()
    torch.manual_seed(0)
    ours = GPT3(gpt3_config).double()
    for name, p in gpt2.state_dict().items():  # the same initial weights for the same seed
        assert torch.equal(ours.state_dict()[name], p), name
    idx = tokens()
    ours_logits, gpt2_logits = ours(idx), gpt2(idx)
    assert_close(ours_logits, gpt2_logits, **TIGHT)
    loss_of(ours_logits).backward()
    loss_of(gpt2_logits).backward()
    compare_gradients(ours, gpt2)


def dense_with_masks(model: GPT, idx: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """GPT-2's forward pass with its own (dense) attention, given each layer's (T, T) mask."""
    T = idx.shape[1]
    x = model.token_embedding(idx) + model.position_embedding(torch.arange(T))
    for block, mask in zip(model.blocks, masks):
        x = block(x, mask, None)
    return model.lm_head(model.final_norm(x))


@pytest.mark.parametrize("blocked", [True, False], ids=["blocked", "dense-kernel"])
@pytest.mark.parametrize("band,T", [(4, CONTEXT), (5, 23), (3, 2)])
def test_with_the_band_it_is_a_dense_gpt_given_band_masks_on_alternate_layers(band, T, blocked, monkeypatch):
    monkeypatch.setattr(gpt3_model, "MIN_BLOCKS", 0 if blocked else 10**9)  # the path a banded layer takes
    gpt2_config, gpt3_config = configs(band)
    torch.manual_seed(0)
    ours = GPT3(gpt3_config).double()
    dense = GPT(gpt2_config).double()
    dense.load_state_dict(ours.state_dict())
    masks = attention_pattern(gpt3_config, T)
    assert [gpt3_config.is_banded(layer) for layer in range(4)] == [True, False, True, False]
    assert torch.equal(masks[1], torch.ones(T, T, dtype=torch.bool).tril())
    idx = tokens(T)
    ours_logits, dense_logits = ours(idx), dense_with_masks(dense, idx, masks)
    assert_close(ours_logits, dense_logits, **TIGHT)
    loss_of(ours_logits).backward()
    loss_of(dense_logits).backward()
    compare_gradients(ours, dense)
    if T > band:  # the control: the band changes the model
        assert (ours_logits - dense(idx)).abs().max() > 1e-3


def test_the_kv_cache_and_padding_paths_keep_the_band():
    _, config = configs(band=3)
    torch.manual_seed(0)
    model = GPT3(config).double().eval()
    idx = tokens(30, B=2)
    assert idx.shape[1] >= gpt3_model.MIN_BLOCKS * 3, "the unpadded call must take the blocked path"
    logits = model(idx)
    assert_close(model(idx, attention_mask=torch.ones_like(idx)), logits, **TIGHT)  # the dense path, band in the mask
    padded = torch.cat([torch.zeros(2, 5, dtype=torch.long), idx], dim=1)  # five pad tokens on the left
    mask = torch.cat([torch.zeros(2, 5, dtype=torch.long), torch.ones_like(idx)], dim=1)
    assert_close(model(padded, attention_mask=mask)[:, 5:], logits, **TIGHT)
    prompt = idx[:, :7]
    cached = torch.stack(list(model.generate(prompt, 12, greedy=True)), dim=1)
    uncached = torch.stack(list(model.generate(prompt, 12, greedy=True, use_cache=False)), dim=1)
    assert torch.equal(cached, uncached)


def test_banded_layers_cost_fewer_flops():
    _, dense_config = configs(band=None)
    _, banded_config = configs(band=4)
    torch.manual_seed(0)
    dense, banded = GPT3(dense_config), GPT3(banded_config)
    C, T = 16, CONTEXT
    saved = 2 * 12 * C * (T - 8)  # two banded layers, each 2w = 8 keys per query instead of T
    assert dense.estimate_flops_per_token() - banded.estimate_flops_per_token() == saved


def test_hugging_face_round_trip_without_the_band_and_a_refusal_with_it():
    transformers = pytest.importorskip("transformers")
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=2, n_head=2, n_embd=16, vocab_size=VOCAB,
                                                              n_positions=CONTEXT)).double().eval()
    ours = GPT3.from_hf(hf)  # GPT-2's weights in a GPT3 with no band
    assert isinstance(ours, GPT3) and ours.config.band is None
    idx = tokens()
    assert_close(ours(idx), hf(idx).logits, **TIGHT)
    assert_close(ours.to_hf()(idx).logits, hf(idx).logits, **TIGHT)
    _, banded = configs(band=4)
    with pytest.raises(ValueError, match="band=None"):
        GPT3(banded).to_hf()
    with pytest.raises(ValueError, match="at least 1"):
        GPT3(configs(band=0)[1])
