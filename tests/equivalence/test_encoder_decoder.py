"""Our GRU equals nn.GRU with copied weights (outputs, final state and every gradient), and so the
encoder-decoder built from it equals the one the experiments build from nn.GRU; the paper's own GRU
variant (the reset gate before the recurrent matrix) equals its equations written out; plus the toy
translation data and the decoder's own guarantees (teacher forcing sees no future word; greedy
decoding feeds back its own argmax)."""

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from milestones.core.data import toy_translation, translation_alignment, translation_dictionary
from milestones.sequences.encoder_decoder.model import GRU, EncoderDecoder

torch_gru = functools.partial(nn.GRU, batch_first=True)


@pytest.mark.parametrize("with_h0", [False, True])
def test_gru_matches_nn_gru_forward_and_backward(with_h0):
    torch.manual_seed(int(with_h0))
    ours = GRU(5, 7).double()
    reference = torch_gru(5, 7).double()
    reference.load_state_dict(ours.state_dict())  # same names and layout: strict loading must succeed
    x = torch.randn(4, 11, 5, dtype=torch.float64)
    h0 = torch.randn(1, 4, 7, dtype=torch.float64) if with_h0 else None
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, h_n = ours(x_ours, h0)
    out_ref, h_n_ref = reference(x_ref, h0)
    assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    assert_close(h_n, h_n_ref, rtol=1e-12, atol=1e-12)
    w_out, w_h = torch.randn_like(out), torch.randn_like(h_n)  # weight every output differently
    ((out * w_out).sum() + (h_n * w_h).sum()).backward()
    ((out_ref * w_out).sum() + (h_n_ref * w_h).sum()).backward()
    assert_close(x_ours.grad, x_ref.grad, rtol=1e-10, atol=1e-12)
    for (name, p), (name_ref, p_ref) in zip(ours.named_parameters(), reference.named_parameters()):
        assert name == name_ref
        assert_close(p.grad, p_ref.grad, rtol=1e-10, atol=1e-12, msg=name)


def test_gru_gates_do_what_the_equations_say():
    """Update gate forced open (z = 1): the state is copied unchanged; forced shut (z = 0) with the
    reset gate shut too (r = 0): the state is replaced by tanh(W_in x + b_in), the past ignored."""
    torch.manual_seed(0)
    gru = GRU(3, 4).double()
    x, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    with torch.no_grad():
        gru.bias_ih_l0[4:8] = 1e4  # z -> 1
    assert_close(gru.step(x, h), h)
    with torch.no_grad():
        gru.bias_ih_l0[0:8] = -1e4  # r -> 0 and z -> 0
    w_in, b_in = gru.weight_ih_l0[8:], gru.bias_ih_l0[8:]
    assert_close(gru.step(x, h), torch.tanh(x @ w_in.T + b_in))


def test_papers_gru_variant_equals_the_equations_written_out_forward_and_backward():
    """Cho et al.'s candidate, tanh(W x + U (r * h)) with biases, one unit at a time from the raw weights;
    and it is a different function from PyTorch's variant with the same weights."""
    torch.manual_seed(4)
    paper, pytorch = GRU(3, 4, reset_before=True).double(), GRU(3, 4).double()
    pytorch.load_state_dict(paper.state_dict())
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    h0 = torch.randn(1, 2, 4, dtype=torch.float64)
    out, _ = paper(x, h0)

    def sigmoid(v):
        return 1 / (1 + torch.exp(-v))

    w_ih, w_hh, b_ih, b_hh = paper.weight_ih_l0, paper.weight_hh_l0, paper.bias_ih_l0, paper.bias_hh_l0
    expected = []
    for b in range(2):
        h, states = list(h0[0, b]), []
        for t in range(6):
            gate = [[sum(w_ih[g * 4 + j, i] * x[b, t, i] for i in range(3)) + b_ih[g * 4 + j] for j in range(4)]
                    for g in range(3)]  # W_i. x + b_i. for r, z, n
            r = [sigmoid(gate[0][j] + sum(w_hh[j, k] * h[k] for k in range(4)) + b_hh[j]) for j in range(4)]
            z = [sigmoid(gate[1][j] + sum(w_hh[4 + j, k] * h[k] for k in range(4)) + b_hh[4 + j]) for j in range(4)]
            n = [torch.tanh(gate[2][j] + sum(w_hh[8 + j, k] * r[k] * h[k] for k in range(4)) + b_hh[8 + j])
                 for j in range(4)]  # the reset gate multiplies h before the recurrent matrix
            h = [(1 - z[j]) * n[j] + z[j] * h[j] for j in range(4)]
            states.append(torch.stack(h))
        expected.append(torch.stack(states))
    expected = torch.stack(expected)
    assert_close(out, expected, rtol=1e-12, atol=1e-12)
    probe = torch.randn_like(out)
    grads = torch.autograd.grad((out * probe).sum(), list(paper.parameters()))
    expected_grads = torch.autograd.grad((expected * probe).sum(), list(paper.parameters()))
    for (name, _), g, e in zip(paper.named_parameters(), grads, expected_grads):
        assert_close(g, e, rtol=1e-10, atol=1e-12, msg=name)
    assert (pytorch(x, h0)[0] - out).abs().max() > 1e-3


def twin_translators():
    torch.manual_seed(3)
    ours = EncoderDecoder(6, 7, bos=6, embed_size=5, hidden_size=8).double()
    fast = EncoderDecoder(6, 7, bos=6, embed_size=5, hidden_size=8, recurrent_layer=torch_gru).double()
    fast.load_state_dict(ours.state_dict())
    return ours, fast


def test_encoder_decoder_with_our_gru_equals_it_with_nn_gru():
    ours, fast = twin_translators()
    source, target = torch.randint(6, (3, 9)), torch.randint(6, (3, 9))
    loss = F.cross_entropy(ours(source, target).flatten(0, 1), target.flatten())
    loss_fast = F.cross_entropy(fast(source, target).flatten(0, 1), target.flatten())
    assert_close(loss, loss_fast, rtol=1e-12, atol=1e-12)
    loss.backward()
    loss_fast.backward()
    for (name, p), p_fast in zip(ours.named_parameters(), fast.parameters()):
        assert_close(p.grad, p_fast.grad, rtol=1e-10, atol=1e-12, msg=name)
    assert torch.equal(ours.translate(source, 9), fast.translate(source, 9))


def test_teacher_forcing_sees_only_earlier_target_words():
    _, model = twin_translators()
    source, target = torch.randint(6, (2, 5)), torch.randint(6, (2, 6))
    changed = target.clone()
    changed[:, 3] = (changed[:, 3] + 1) % 6
    a, b = model(source, target), model(source, changed)
    assert_close(a[:, :4], b[:, :4])  # positions 0..3 predict word t from words < t
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_greedy_decoding_feeds_back_its_own_best_word():
    _, model = twin_translators()
    source = torch.randint(6, (4, 5))
    words = model.translate(source, 6)
    logits = model(source, words)  # teacher-forcing on its own output reproduces every step
    assert torch.equal(logits.argmax(-1), words)


def test_toy_translation_is_a_dictionary_plus_pair_swap():
    source, target = toy_translation(50, 7, vocab=10, seed=4)
    dictionary = translation_dictionary(10)
    assert sorted(dictionary.tolist()) == list(range(10))  # a bijection: every sentence is translatable back
    assert translation_alignment(7).tolist() == [1, 0, 3, 2, 5, 4, 6]
    for s, t in zip(source.tolist(), target.tolist()):
        assert t == [dictionary[s[j]].item() for j in [1, 0, 3, 2, 5, 4, 6]]
    assert torch.equal(toy_translation(50, 7, vocab=10, seed=4)[0], source)
    assert not torch.equal(toy_translation(50, 7, vocab=10, seed=5)[0], source)
