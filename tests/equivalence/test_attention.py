"""Additive attention does what equations (1)-(3) say: the weights are a softmax of
v^T tanh(W s + U h_j) and sum to one, the context is the explicit weighted sum of the annotations,
the batched computation equals a loop over single examples (forward and backward), and its gradients
equal those of the equations written out and pass gradcheck against finite differences. The
bidirectional encoder equals nn.GRU(bidirectional=True), our GRU's step equals torch.gru_cell (the
fused cell the decoder runs when built from nn.GRU), teacher forcing with the embedding and readout
taken out of the decoder loop equals the decoder written one word at a time, and the translator built
from our GRU equals the one the experiment builds from nn.GRU."""

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from milestones.sequences.attention.model import AdditiveAttention, AttentionTranslator
from milestones.sequences.encoder_decoder.model import GRU

TIGHT = dict(rtol=1e-12, atol=1e-12)
GRADS = dict(rtol=1e-10, atol=1e-12)


def attention_inputs(batch=5, length=7, seed=0):
    torch.manual_seed(seed)
    attention = AdditiveAttention(query_size=6, key_size=8, attention_size=4).double()
    query = torch.randn(batch, 6, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(batch, length, 8, dtype=torch.float64, requires_grad=True)
    return attention, query, keys


def test_weights_are_the_softmax_of_the_additive_score_and_sum_to_one():
    attention, query, keys = attention_inputs()
    _, weights = attention(query, keys, attention.project_keys(keys))
    W, U, b, v = (attention.query_projection.weight, attention.key_projection.weight,
                  attention.key_projection.bias, attention.score.weight[0])
    for n in range(len(query)):
        scores = torch.stack([v @ torch.tanh(W @ query[n] + U @ keys[n, j] + b) for j in range(keys.shape[1])])
        expected = torch.exp(scores) / torch.exp(scores).sum()
        assert_close(weights[n], expected, **TIGHT)
    assert_close(weights.sum(1), torch.ones(len(query), dtype=torch.float64), **TIGHT)
    assert (weights > 0).all()


def test_context_is_the_weighted_sum_of_the_annotations():
    attention, query, keys = attention_inputs()
    context, weights = attention(query, keys, attention.project_keys(keys))
    for n in range(len(query)):
        explicit = sum(weights[n, j] * keys[n, j] for j in range(keys.shape[1]))
        assert_close(context[n], explicit, **TIGHT)


def test_a_dominant_score_makes_attention_pick_that_annotation():
    """If one key's score is far above the rest, the context is (almost exactly) that key."""
    attention, query, keys = attention_inputs(batch=1, length=4)
    with torch.no_grad():
        attention.query_projection.weight.zero_()
        attention.key_projection.bias.zero_()
        attention.score.weight.fill_(50.0)
        attention.key_projection.weight.zero_()
        attention.key_projection.weight[:, 0] = 1.0  # score_j = 200 tanh(h_j0): key 2 alone is positive
        keys[0, :, 0] = torch.tensor([-1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    context, weights = attention(query, keys, attention.project_keys(keys))
    assert weights[0, 2] > 1 - 1e-12
    assert_close(context[0], keys[0, 2], rtol=1e-9, atol=1e-9)


def test_batched_attention_equals_a_loop_over_examples_forward_and_backward():
    attention, query, keys = attention_inputs(batch=4, length=6, seed=1)
    context, weights = attention(query, keys, attention.project_keys(keys))
    probe_c, probe_w = torch.randn_like(context), torch.randn_like(weights)  # weight every output differently
    ((context * probe_c).sum() + (weights * probe_w).sum()).backward()
    batched_grads = [query.grad.clone(), keys.grad.clone()] + [p.grad.clone() for p in attention.parameters()]
    query.grad, keys.grad = None, None
    attention.zero_grad()
    for n in range(len(query)):
        c, w = attention(query[n:n + 1], keys[n:n + 1], attention.project_keys(keys[n:n + 1]))
        assert_close(c, context[n:n + 1], **TIGHT)
        assert_close(w, weights[n:n + 1], **TIGHT)
        ((c * probe_c[n:n + 1]).sum() + (w * probe_w[n:n + 1]).sum()).backward()  # gradients accumulate
    looped_grads = [query.grad, keys.grad] + [p.grad for p in attention.parameters()]
    for batched, looped in zip(batched_grads, looped_grads):
        assert_close(batched, looped, **GRADS)


def written_out_attention(query, keys, W, U, b, v):
    """Equations (1)-(3) one example and one position at a time, from the raw weight tensors."""
    contexts, all_weights = [], []
    for n in range(len(query)):
        scores = torch.stack([v @ torch.tanh(W @ query[n] + U @ keys[n, j] + b) for j in range(keys.shape[1])])
        weights = torch.exp(scores - scores.max()) / torch.exp(scores - scores.max()).sum()
        contexts.append(sum(weights[j] * keys[n, j] for j in range(keys.shape[1])))
        all_weights.append(weights)
    return torch.stack(contexts), torch.stack(all_weights)


def test_attention_gradients_equal_the_written_out_equations_and_pass_gradcheck():
    attention, query, keys = attention_inputs(batch=3, length=5, seed=3)
    params = [attention.query_projection.weight, attention.key_projection.weight, attention.key_projection.bias,
              attention.score.weight]
    probe_c, probe_w = torch.randn(3, 8, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)

    def ours(query, keys, W, U, b, v):  # the module, with its weights given as arguments
        named = {"query_projection.weight": W, "key_projection.weight": U, "key_projection.bias": b,
                 "score.weight": v}
        projected = keys @ U.T + b  # U h_j + b, what project_keys computes (tested above with the module's own)
        return torch.func.functional_call(attention, named, (query, keys, projected))

    inputs = (query, keys, *(p.detach().clone().requires_grad_() for p in params))
    context, weights = ours(*inputs)
    expected_c, expected_w = written_out_attention(query, keys, inputs[2], inputs[3], inputs[4], inputs[5][0])
    assert_close(context, expected_c, **TIGHT)
    assert_close(weights, expected_w, **TIGHT)
    grads = torch.autograd.grad((context * probe_c).sum() + (weights * probe_w).sum(), inputs)
    expected = torch.autograd.grad((expected_c * probe_c).sum() + (expected_w * probe_w).sum(), inputs)
    for g, e in zip(grads, expected):
        assert_close(g, e, **GRADS)
    # and autograd's gradients of ours against finite differences, in float64
    assert torch.autograd.gradcheck(ours, inputs, eps=1e-6, atol=1e-7)


def translators():
    torch.manual_seed(2)
    ours = AttentionTranslator(6, 7, bos=6, embed_size=5, hidden_size=8, attention_size=4).double()
    fast = AttentionTranslator(6, 7, bos=6, embed_size=5, hidden_size=8, attention_size=4,
                               recurrent_layer=functools.partial(nn.GRU, batch_first=True)).double()
    fast.load_state_dict(ours.state_dict())  # same parameter names: strict loading must succeed
    return ours, fast


def test_annotations_equal_a_bidirectional_nn_gru():
    ours, _ = translators()
    reference = nn.GRU(5, 8, batch_first=True, bidirectional=True).double()
    with torch.no_grad():
        for name, p in ours.forward_encoder.named_parameters():
            getattr(reference, name).copy_(p)
        for name, p in ours.backward_encoder.named_parameters():
            getattr(reference, name + "_reverse").copy_(p)
    source = torch.randint(6, (3, 9))
    annotations, first_state = ours.encode(source)
    expected, last = reference(ours.source_embedding(source))
    assert_close(annotations, expected, **TIGHT)
    assert_close(first_state, torch.tanh(ours.init_decoder(last[1])), **TIGHT)  # s_0 from bwd_h_1


@pytest.mark.parametrize("translator", ["ours", "fast"])
def test_batched_translator_equals_a_loop_over_sentences(translator):
    model = dict(zip(["ours", "fast"], translators()))[translator]
    source, target = torch.randint(6, (4, 7)), torch.randint(6, (4, 7))
    logits, alignments = model.teacher_forced(source, target)
    assert_close(alignments.sum(-1), torch.ones(4, 7, dtype=torch.float64), **TIGHT)
    for n in range(4):
        one_logits, one_alignment = model.teacher_forced(source[n:n + 1], target[n:n + 1])
        assert_close(one_logits, logits[n:n + 1], **TIGHT)
        assert_close(one_alignment, alignments[n:n + 1], **TIGHT)
    assert torch.equal(model.translate(source, 7)[1:2], model.translate(source[1:2], 7))


def test_gru_step_equals_torchs_fused_gru_cell_forward_and_backward():
    torch.manual_seed(4)
    gru = GRU(5, 7).double()
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    h = torch.randn(3, 7, dtype=torch.float64, requires_grad=True)
    ours = gru.step(x, h)
    fused = torch.gru_cell(x, h, gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)
    assert_close(ours, fused, **TIGHT)
    probe = torch.randn_like(ours)
    inputs = [x, h, *gru.parameters()]
    for g, g_fused in zip(torch.autograd.grad((ours * probe).sum(), inputs),
                          torch.autograd.grad((fused * probe).sum(), inputs)):
        assert_close(g, g_fused, **GRADS)


def one_word_at_a_time(model, source, target):
    """Teacher forcing as equation (4) reads: embed the previous word, attend, step, read out, per word."""
    annotations, state = model.encode(source)
    projected = model.attention.project_keys(annotations)
    previous = torch.full_like(target[:, 0], model.bos)
    all_logits, alignments = [], []
    for i in range(target.shape[1]):
        embedded = model.target_embedding(previous)
        state, context, weights = model.recur(embedded, state, annotations, projected)
        all_logits.append(model.readout(torch.cat([state, embedded, context], dim=-1)))
        alignments.append(weights)
        previous = target[:, i]  # feed the true word
    return torch.stack(all_logits, dim=1), torch.stack(alignments, dim=1)


@pytest.mark.parametrize("translator", ["ours", "fast"])
def test_teacher_forcing_equals_the_decoder_one_word_at_a_time(translator):
    """teacher_forced embeds the known previous words before the loop and reads out after it."""
    model = dict(zip(["ours", "fast"], translators()))[translator]
    source, target = torch.randint(6, (3, 8)), torch.randint(6, (3, 6))
    logits, alignments = model.teacher_forced(source, target)
    expected_logits, expected_alignments = one_word_at_a_time(model, source, target)
    assert_close(logits, expected_logits, **TIGHT)
    assert_close(alignments, expected_alignments, **TIGHT)
    probe = torch.randn_like(logits)
    params = list(model.parameters())
    for g, e in zip(torch.autograd.grad((logits * probe).sum(), params),
                    torch.autograd.grad((expected_logits * probe).sum(), params)):
        assert_close(g, e, **GRADS)


def test_translator_with_our_gru_equals_it_with_nn_gru():
    ours, fast = translators()
    source, target = torch.randint(6, (3, 8)), torch.randint(6, (3, 8))
    loss = F.cross_entropy(ours(source, target).flatten(0, 1), target.flatten())
    loss_fast = F.cross_entropy(fast(source, target).flatten(0, 1), target.flatten())
    assert_close(loss, loss_fast, **TIGHT)
    loss.backward()
    loss_fast.backward()
    for (name, p), p_fast in zip(ours.named_parameters(), fast.parameters()):
        assert_close(p.grad, p_fast.grad, **GRADS, msg=name)
    logits = ours(source, ours.translate(source, 8))  # greedy decoding feeds back its own argmax
    assert torch.equal(logits.argmax(-1), ours.translate(source, 8))
