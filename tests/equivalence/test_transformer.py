"""The Transformer equals PyTorch's own, piece by piece, forward and backward, in float64:

- our written-out attention equals `F.scaled_dot_product_attention` (no mask, causal, padding, both);
- our `MultiHeadAttention` equals `nn.MultiheadAttention` with copied weights (self- and cross-attention,
  padding and causal masks);
- one encoder layer and one decoder layer equal `nn.TransformerEncoderLayer` / `nn.TransformerDecoderLayer`
  (post-LN, ReLU, dropout 0, batch_first);
- the whole encoder-decoder equals `nn.Transformer` (its final norms removed: the paper's post-LN stack
  has none), with our tied embeddings and sinusoidal positions added on both sides;
- the positions follow equation (4), the learning-rate schedule peaks at step warmup, and our label
  smoothing equals `F.cross_entropy(label_smoothing=eps)`.

Every comparison covers the outputs, the inputs' gradients and every parameter's gradient. Tolerances:
float64 carries about 16 digits; the two sides add the same terms in different orders, so outputs agree
to about 1e-15 relative and gradients (longer sums) to about 1e-13; the bars leave a factor of 1000.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from milestones.transformers.transformer.model import (
    DecoderLayer,
    EncoderLayer,
    MultiHeadAttention,
    Transformer,
    attention_weights,
    label_smoothed_cross_entropy,
    learning_rate,
    learning_rate_schedule,
    scaled_dot_product_attention,
    sinusoidal_positions,
)

TIGHT = dict(rtol=1e-12, atol=1e-13)
GRADS = dict(rtol=1e-10, atol=1e-12)
D, HEADS, D_FF = 16, 4, 24


def padding_mask(lengths, size):
    """(B, size) True at the positions past each sequence's length."""
    return torch.arange(size)[None, :] >= torch.tensor(lengths)[:, None]


def causal_disallowed(size):
    """nn.Transformer's convention: True where a query may NOT look (keys after the query)."""
    return torch.ones(size, size, dtype=torch.bool).triu(1)


def backward_with_probe(outputs, seed=99):
    """Backpropagate sum(out * r) with a fixed random r, so every output element gets its own weight."""
    torch.manual_seed(seed)
    sum((out * torch.randn(out.shape, dtype=out.dtype)).sum() for out in outputs).backward()  # not randn_like: strides


# ------------------------------------------------------------------------------- scaled dot-product
def qkv(batch=(3, 2), tq=5, tk=7, d=8, seed=0):
    torch.manual_seed(seed)
    make = lambda t: torch.randn(*batch, t, d, dtype=torch.float64, requires_grad=True)  # noqa: E731
    return make(tq), make(tk), make(tk)


@pytest.mark.parametrize("case", ["none", "causal", "padding", "causal+padding", "square causal"])
def test_attention_equals_f_scaled_dot_product_attention(case):
    q, k, v = qkv(tq=7 if case == "square causal" else 5)
    causal = "causal" in case
    keep = ~padding_mask([7, 4, 6], 7)[:, None, None, :] if "padding" in case else None  # (3, 1, 1, Tk)
    ours = scaled_dot_product_attention(q, k, v, keep, causal)
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    if causal and keep is not None:  # F.sdpa takes one or the other: give it their conjunction
        both = keep & torch.ones(5, 7, dtype=torch.bool).tril()
        reference = F.scaled_dot_product_attention(q2, k2, v2, attn_mask=both)
    else:
        reference = F.scaled_dot_product_attention(q2, k2, v2, attn_mask=keep, is_causal=causal)
    assert_close(ours, reference, **TIGHT)
    backward_with_probe([ours])
    backward_with_probe([reference])
    for mine, theirs in zip((q, k, v), (q2, k2, v2)):
        assert_close(mine.grad, theirs.grad, **GRADS)


def test_masked_keys_get_no_weight_and_the_future_cannot_leak():
    q, k, v = qkv(tq=6, tk=6)
    weights = attention_weights(q, k, ~padding_mask([6, 3, 5], 6)[:, None, None, :], causal=True)
    assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)), **TIGHT)
    assert (weights.triu(1) == 0).all()  # query i gives key j > i exactly zero weight
    assert (weights[1, ..., 3:] == 0).all()  # padding of the second sequence
    before = scaled_dot_product_attention(q, k, v, causal=True)
    with torch.no_grad():
        k[..., 4:, :] += 10.0  # change keys and values at positions 4 and 5 only
        v[..., 4:, :] -= 10.0
    after = scaled_dot_product_attention(q, k, v, causal=True)
    assert_close(after[..., :4, :], before[..., :4, :], **TIGHT)  # queries 0..3 never saw them
    assert not torch.allclose(after[..., 4:, :], before[..., 4:, :])


def test_scaling_by_sqrt_dk_is_what_the_reference_does():
    """A control that the comparison can fail: without the 1/sqrt(d_k) our attention differs."""
    q, k, v = qkv()
    unscaled = F.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
    assert not torch.allclose(unscaled, F.scaled_dot_product_attention(q, k, v), atol=1e-3)
    assert_close(scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, v), **TIGHT)


# ------------------------------------------------------------------------- copying weights by name
def attention_names(ours, ref):
    """(our parameter names, concatenated along dim 0) -> the nn.MultiheadAttention parameter."""
    return [((f"{ours}query.weight", f"{ours}key.weight", f"{ours}value.weight"), f"{ref}in_proj_weight"),
            ((f"{ours}query.bias", f"{ours}key.bias", f"{ours}value.bias"), f"{ref}in_proj_bias"),
            ((f"{ours}out.weight",), f"{ref}out_proj.weight"), ((f"{ours}out.bias",), f"{ref}out_proj.bias")]


def sublayer_names(ours, ref, pairs):
    return [((f"{ours}{a}.{p}",), f"{ref}{b}.{p}") for a, b in pairs for p in ("weight", "bias")]


def encoder_layer_names(ours="", ref=""):
    return attention_names(ours + "self_attention.", ref + "self_attn.") + sublayer_names(
        ours, ref, [("feed_forward.inner", "linear1"), ("feed_forward.outer", "linear2"),
                    ("self_attention_norm", "norm1"), ("feed_forward_norm", "norm2")])


def decoder_layer_names(ours="", ref=""):
    return (attention_names(ours + "self_attention.", ref + "self_attn.")
            + attention_names(ours + "cross_attention.", ref + "multihead_attn.")
            + sublayer_names(ours, ref, [("feed_forward.inner", "linear1"), ("feed_forward.outer", "linear2"),
                                         ("self_attention_norm", "norm1"), ("cross_attention_norm", "norm2"),
                                         ("feed_forward_norm", "norm3")]))


def copy_into(reference, ours, names):
    """Copy our weights into the reference; every parameter of both sides must be named exactly once."""
    mine, theirs = dict(ours.named_parameters()), dict(reference.named_parameters())
    assert sorted(n for group, _ in names for n in group) == sorted(mine), "our parameters not all mapped"
    assert sorted(ref for _, ref in names) == sorted(theirs), "reference parameters not all mapped"
    with torch.no_grad():
        for group, ref in names:
            theirs[ref].copy_(torch.cat([mine[n] for n in group]))


def assert_same_gradients(reference, ours, names):
    mine, theirs = dict(ours.named_parameters()), dict(reference.named_parameters())
    for group, ref in names:
        assert_close(torch.cat([mine[n].grad for n in group]), theirs[ref].grad, **GRADS, msg=f"{group} vs {ref}")


def inputs(*shapes, seed=1):
    torch.manual_seed(seed)
    return [torch.randn(*shape, dtype=torch.float64, requires_grad=True) for shape in shapes]


# --------------------------------------------------------------------------------- multi-head
@pytest.mark.parametrize("kind", ["self", "self causal", "cross", "cross padded"])
def test_multi_head_attention_equals_nn_multihead_attention(kind):
    torch.manual_seed(0)
    ours = MultiHeadAttention(D, HEADS).double()
    reference = nn.MultiheadAttention(D, HEADS, dropout=0.0, batch_first=True).double()
    names = attention_names("", "")
    copy_into(reference, ours, names)
    x, memory = inputs((3, 6, D), (3, 8, D))
    key = x if kind.startswith("self") else memory
    padding = padding_mask([8, 5, 7], 8) if kind == "cross padded" else None
    causal = kind == "self causal"
    out = ours(x, key, key, key_padding=padding, causal=causal)
    x2, key2 = x.detach().clone().requires_grad_(), key.detach().clone().requires_grad_()
    query2 = x2
    key2 = x2 if kind.startswith("self") else key2
    expected, _ = reference(query2, key2, key2, key_padding_mask=padding, need_weights=False,
                            attn_mask=causal_disallowed(6) if causal else None, is_causal=causal)
    assert_close(out, expected, **TIGHT)
    backward_with_probe([out])
    backward_with_probe([expected])
    assert_same_gradients(reference, ours, names)
    assert_close(x.grad, x2.grad, **GRADS)
    if not kind.startswith("self"):
        assert_close(memory.grad, key2.grad, **GRADS)


def test_heads_are_independent_slices_of_the_projections():
    """Equation (2) literally: head i attends with columns i*d_k..(i+1)*d_k of W^Q, W^K, W^V; the
    concatenated heads go through W^O."""
    torch.manual_seed(3)
    attention = MultiHeadAttention(D, HEADS).double()
    x, memory = inputs((2, 5, D), (2, 7, D), seed=4)
    d_k = D // HEADS
    heads = []
    for i in range(HEADS):
        rows = slice(i * d_k, (i + 1) * d_k)
        project = lambda layer, t: t @ layer.weight[rows].T + layer.bias[rows]  # noqa: E731
        heads.append(scaled_dot_product_attention(project(attention.query, x), project(attention.key, memory),
                                                  project(attention.value, memory)))
    explicit = attention.out(torch.cat(heads, dim=-1))
    assert_close(attention(x, memory, memory), explicit, **TIGHT)


# ------------------------------------------------------------------------------------- layers
def test_encoder_layer_equals_nn_transformer_encoder_layer():
    torch.manual_seed(5)
    ours = EncoderLayer(D, HEADS, D_FF, dropout=0.0).double()
    reference = nn.TransformerEncoderLayer(D, HEADS, D_FF, dropout=0.0, activation="relu", batch_first=True,
                                           norm_first=False).double()
    names = encoder_layer_names()
    copy_into(reference, ours, names)
    (x,) = inputs((3, 7, D), seed=6)
    x2 = x.detach().clone().requires_grad_()
    padding = padding_mask([7, 4, 6], 7)
    out, expected = ours(x, padding), reference(x2, src_key_padding_mask=padding)
    assert_close(out, expected, **TIGHT)
    backward_with_probe([out])
    backward_with_probe([expected])
    assert_same_gradients(reference, ours, names)
    assert_close(x.grad, x2.grad, **GRADS)


def decoder_pair(seed=7):
    torch.manual_seed(seed)
    ours = DecoderLayer(D, HEADS, D_FF, dropout=0.0).double()
    reference = nn.TransformerDecoderLayer(D, HEADS, D_FF, dropout=0.0, activation="relu", batch_first=True,
                                           norm_first=False).double()
    names = decoder_layer_names()
    copy_into(reference, ours, names)
    return ours, reference, names


def test_decoder_layer_equals_nn_transformer_decoder_layer():
    ours, reference, names = decoder_pair()
    y, memory = inputs((3, 6, D), (3, 8, D), seed=8)
    y2, memory2 = (t.detach().clone().requires_grad_() for t in (y, memory))
    memory_padding, padding = padding_mask([8, 5, 7], 8), padding_mask([6, 6, 4], 6)
    out = ours(y, memory, memory_padding, padding)
    expected = reference(y2, memory2, tgt_mask=causal_disallowed(6), tgt_is_causal=True,
                         memory_key_padding_mask=memory_padding, tgt_key_padding_mask=padding)
    assert_close(out, expected, **TIGHT)
    backward_with_probe([out])
    backward_with_probe([expected])
    assert_same_gradients(reference, ours, names)
    assert_close(y.grad, y2.grad, **GRADS)
    assert_close(memory.grad, memory2.grad, **GRADS)


def test_decoder_layer_without_its_causal_mask_would_not_match():
    """A control that the comparison can fail: the reference without the causal mask differs from ours."""
    ours, reference, _ = decoder_pair()
    y, memory = inputs((2, 6, D), (2, 8, D), seed=8)
    with torch.no_grad():
        assert not torch.allclose(ours(y, memory), reference(y, memory), atol=1e-3)
        assert_close(ours(y, memory), reference(y, memory, tgt_mask=causal_disallowed(6)), **TIGHT)


# ------------------------------------------------------------------------------- whole model
VOCAB, BOS, LAYERS = 11, 10, 2


def whole_models(seed=9):
    torch.manual_seed(seed)
    ours = Transformer(VOCAB, BOS, d_model=D, heads=HEADS, d_ff=D_FF, layers=LAYERS, dropout=0.0).double()
    # nn.Transformer ends both stacks with an extra LayerNorm; the paper's post-LN stacks have none, so the
    # reference is nn.Transformer with stacks built without that final norm.
    encoder_layer = nn.TransformerEncoderLayer(D, HEADS, D_FF, dropout=0.0, batch_first=True)
    decoder_layer = nn.TransformerDecoderLayer(D, HEADS, D_FF, dropout=0.0, batch_first=True)
    reference = nn.Transformer(
        D, HEADS, LAYERS, LAYERS, D_FF, dropout=0.0, batch_first=True,
        custom_encoder=nn.TransformerEncoder(encoder_layer, LAYERS, norm=None, enable_nested_tensor=False),
        custom_decoder=nn.TransformerDecoder(decoder_layer, LAYERS, norm=None)).double()
    embedding = nn.Embedding(VOCAB, D).double()  # the reference side's copy of the tied E
    with torch.no_grad():
        embedding.weight.copy_(ours.embedding.weight)
    names = [pair for i in range(LAYERS) for pair in encoder_layer_names(f"encoder.{i}.", f"encoder.layers.{i}.")]
    names += [pair for i in range(LAYERS) for pair in decoder_layer_names(f"decoder.{i}.", f"decoder.layers.{i}.")]
    holder = nn.Module()  # one module holding the reference and its embedding, for the name map
    holder.encoder, holder.decoder, holder.embedding = reference.encoder, reference.decoder, embedding
    names.append((("embedding.weight",), "embedding.weight"))
    copy_into(holder, ours, names)
    return ours, reference, embedding, holder, names


def reference_logits(reference, embedding, source, target, source_padding, target_padding):
    """Our embeddings and positions on both sides of nn.Transformer, then the tied output projection."""
    positions = sinusoidal_positions(16, D).double()
    embed = lambda words: embedding(words) * math.sqrt(D) + positions[:words.shape[1]]  # noqa: E731
    previous = torch.cat([torch.full_like(target[:, :1], BOS), target[:, :-1]], dim=1)
    hidden = reference(embed(source), embed(previous), tgt_mask=causal_disallowed(target.shape[1]),
                       tgt_is_causal=True, src_key_padding_mask=source_padding,
                       memory_key_padding_mask=source_padding, tgt_key_padding_mask=target_padding)
    return hidden @ embedding.weight.T


def test_whole_model_equals_nn_transformer_with_copied_weights():
    ours, reference, embedding, holder, names = whole_models()
    torch.manual_seed(10)
    source, target = torch.randint(BOS, (3, 7)), torch.randint(BOS, (3, 6))
    source_padding, target_padding = padding_mask([7, 5, 6], 7), padding_mask([6, 4, 6], 6)
    logits = ours(source, target, source_padding, target_padding)
    expected = reference_logits(reference, embedding, source, target, source_padding, target_padding)
    assert logits.shape == (3, 6, VOCAB)
    assert_close(logits, expected, **TIGHT)
    F.cross_entropy(logits.flatten(0, 1), target.flatten()).backward()
    F.cross_entropy(expected.flatten(0, 1), target.flatten()).backward()
    assert_same_gradients(holder, ours, names)  # every weight, the shared embedding's included


def test_greedy_decoding_feeds_back_its_own_argmax_and_batches_like_a_loop():
    ours, *_ = whole_models(seed=11)
    ours.eval()
    source = torch.randint(BOS, (4, 6))
    words = ours.translate(source, 5)
    with torch.no_grad():
        assert torch.equal(ours(source, words).argmax(-1), words)  # each word is the argmax given the ones before
    for n in range(4):
        assert torch.equal(ours.translate(source[n:n + 1], 5), words[n:n + 1])


# -------------------------------------------------------------------------- positions, schedule, loss
def test_positions_follow_equation_4_and_an_offset_is_a_rotation():
    length, d = 30, 12
    table = sinusoidal_positions(length, d)
    for pos in range(length):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert table[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-6)
    offset = 5  # PE(pos + k) = R_k PE(pos) with R_k block-diagonal 2x2 rotations, the same for every pos
    rotation = torch.zeros(d, d)
    for i in range(d // 2):
        a = offset / 10000 ** (2 * i / d)
        rotation[2 * i:2 * i + 2, 2 * i:2 * i + 2] = torch.tensor([[math.cos(a), math.sin(a)],
                                                                  [-math.sin(a), math.cos(a)]])
    assert_close(table[:-offset] @ rotation.T, table[offset:], rtol=0, atol=1e-5)


def test_learning_rate_warms_up_linearly_peaks_at_warmup_then_decays_as_inverse_sqrt():
    d_model, warmup = 64, 40
    rates = [learning_rate(step, d_model, warmup) for step in range(1, 4 * warmup)]
    assert max(range(len(rates)), key=rates.__getitem__) + 1 == warmup
    assert rates[warmup - 1] == pytest.approx((d_model * warmup) ** -0.5, rel=1e-12)
    assert rates[9] == pytest.approx(10 * rates[0], rel=1e-12)  # linear before the peak
    assert rates[4 * warmup - 2] == pytest.approx(rates[warmup - 1] * (warmup / (4 * warmup - 1)) ** 0.5, rel=1e-12)
    # Through LambdaLR over Adam(lr=1): update number n (1-based) uses learning_rate(n).
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([parameter], lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate_schedule(d_model, warmup))
    used = []
    for _ in range(2 * warmup):
        used.append(optimizer.param_groups[0]["lr"])
        parameter.grad = torch.ones(1)
        optimizer.step()
        schedule.step()
    assert used == pytest.approx(rates[:2 * warmup], rel=1e-12)
    assert max(range(len(used)), key=used.__getitem__) + 1 == warmup


def test_label_smoothing_equals_pytorchs_and_differs_from_the_wrong_words_only_variant():
    """The paper smooths with eps = 0.1, citing Szegedy et al. (2016): the target is (1 - eps) on the
    right word plus eps spread uniformly over all K words, the right one included. That is exactly
    PyTorch's `F.cross_entropy(label_smoothing=eps)`. The paper's code (tensor2tensor) spreads eps over
    the K - 1 wrong words only; that equals ours with eps * K / (K - 1), and differs from it at equal eps."""
    torch.manual_seed(12)
    K, eps = 9, 0.1
    logits = torch.randn(4, 5, K, dtype=torch.float64, requires_grad=True)
    target = torch.randint(K, (4, 5))
    ours = label_smoothed_cross_entropy(logits, target, eps)
    logits2 = logits.detach().clone().requires_grad_()
    expected = F.cross_entropy(logits2.flatten(0, 1), target.flatten(), label_smoothing=eps)
    assert_close(ours, expected, **TIGHT)
    ours.backward()
    expected.backward()
    assert_close(logits.grad, logits2.grad, **GRADS)

    with torch.no_grad():
        wrong_only = torch.full((4, 5, K), eps / (K - 1), dtype=torch.float64)
        wrong_only.scatter_(-1, target.unsqueeze(-1), 1 - eps)
        variant = -(wrong_only * F.log_softmax(logits, -1)).sum(-1).mean()
        assert_close(variant, label_smoothed_cross_entropy(logits, target, eps * K / (K - 1)), **TIGHT)
        assert abs(variant - ours) > 1e-4
        assert_close(label_smoothed_cross_entropy(logits, target, 0.0),
                     F.cross_entropy(logits.flatten(0, 1), target.flatten()), **TIGHT)


def test_the_experiments_flop_counts_equal_torchs_flop_counter():
    """The experiment counts FLOPs (Table 2) by formula; torch's counter, which sees every matrix product
    a forward pass runs, must agree exactly. The attention translator is built with our GRU here, whose
    products the counter sees (nn.GRU's fused kernel it does not; the two compute the same products)."""
    from torch.utils.flop_counter import FlopCounterMode

    from milestones.sequences.attention.model import AttentionTranslator
    from milestones.transformers.transformer.experiment import rnn_search_flops, transformer_flops

    torch.manual_seed(13)
    transformer = Transformer(VOCAB, BOS, d_model=D, heads=HEADS, d_ff=D_FF, layers=LAYERS, dropout=0.0)
    rnn = AttentionTranslator(BOS, VOCAB, bos=BOS, embed_size=6, hidden_size=8, attention_size=5)
    for n, t in [(5, 7), (9, 3)]:
        source, target = torch.randint(BOS, (2, n)), torch.randint(BOS, (2, t))
        for model, count in [(transformer, transformer_flops), (rnn, rnn_search_flops)]:
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                model(source, target)
            assert counter.get_total_flops() == 2 * count(model, n, t), type(model).__name__  # a batch of 2
