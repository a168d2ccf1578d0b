"""Our LSTM (modern cell) equals nn.LSTM with copied weights: outputs, final (h, c) and every
gradient, multi-layer and batch-first; the 1997 cell (no forget gate) equals the modern cell with
its forget gate held open, and keeps its error flow constant through the cell."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from milestones.sequences.lstm.model import LSTM


@pytest.mark.parametrize("num_layers,batch_first,with_state", [(1, False, False), (1, True, True), (2, True, False),
                                                               (3, False, True)])
def test_matches_nn_lstm_forward_and_backward(num_layers, batch_first, with_state):
    torch.manual_seed(num_layers * 10 + batch_first)
    ours = LSTM(4, 6, num_layers, batch_first=batch_first).double()
    reference = nn.LSTM(4, 6, num_layers, batch_first=batch_first).double()
    reference.load_state_dict(ours.state_dict())  # identical names and shapes, or this raises
    x = torch.randn(*((3, 8, 4) if batch_first else (8, 3, 4)), dtype=torch.float64)
    state = (torch.randn(num_layers, 3, 6, dtype=torch.float64),
             torch.randn(num_layers, 3, 6, dtype=torch.float64)) if with_state else None
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, (h, c) = ours(x_ours, state)
    out_ref, (h_ref, c_ref) = reference(x_ref, state)
    assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    assert_close(h, h_ref, rtol=1e-12, atol=1e-12)
    assert_close(c, c_ref, rtol=1e-12, atol=1e-12)
    weights = [torch.randn_like(t) for t in (out, h, c)]  # a loss that reaches every output
    sum((t * w).sum() for t, w in zip((out, h, c), weights)).backward()
    sum((t * w).sum() for t, w in zip((out_ref, h_ref, c_ref), weights)).backward()
    assert_close(x_ours.grad, x_ref.grad, rtol=1e-10, atol=1e-12)
    for (name, p), (name_ref, p_ref) in zip(ours.named_parameters(), reference.named_parameters()):
        assert name == name_ref
        assert_close(p.grad, p_ref.grad, rtol=1e-10, atol=1e-12, msg=name)


def test_matches_nn_lstm_in_float32_on_a_long_sequence():
    torch.manual_seed(5)
    ours = LSTM(3, 32, 2, batch_first=True)
    reference = nn.LSTM(3, 32, 2, batch_first=True)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(16, 60, 3)
    out, _ = ours(x)
    out_ref, _ = reference(x)
    assert_close(out, out_ref, rtol=1e-5, atol=1e-5)
    out[:, -1].sum().backward()
    out_ref[:, -1].sum().backward()
    for p, p_ref in zip(ours.parameters(), reference.parameters()):
        assert_close(p.grad, p_ref.grad, rtol=1e-4, atol=1e-5)


def test_original_cell_is_the_modern_cell_with_the_forget_gate_open():
    torch.manual_seed(6)
    original = LSTM(3, 5, forget_gate=False).double()
    modern = LSTM(3, 5, forget_gate=True).double()
    with torch.no_grad():
        for name, p in original.named_parameters():
            i, g, o = p.chunk(3, 0)
            is_bias = name.startswith("bias")
            # a forget gate whose pre-activation is +40 has sigmoid = 1 to double precision
            f = torch.full_like(i, 20.0) if is_bias else torch.zeros_like(i)
            getattr(modern, name).copy_(torch.cat([i, f, g, o]))
    x = torch.randn(7, 2, 3, dtype=torch.float64)
    assert_close(original(x)[0], modern(x)[0], rtol=1e-12, atol=1e-12)
    assert original.weight_ih_l0.shape == (15, 3)  # three gates' rows, not four


def test_constant_error_carousel():
    """Without a forget gate dc_T/dc_0 = 1 exactly, at any distance; with one it is the product of f's."""
    torch.manual_seed(7)
    x = torch.randn(100, 1, 2, dtype=torch.float64)
    c0 = torch.randn(1, 1, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.zeros(1, 1, 4, dtype=torch.float64)
    original = LSTM(2, 4, forget_gate=False).double()
    with torch.no_grad():
        original.weight_hh_l0.zero_()  # cut the path through h, leaving only the cell's self-loop
    _, (_, c) = original(x, (h0, c0))
    (grad,) = torch.autograd.grad(c.sum(), c0)
    assert_close(grad, torch.ones_like(grad), rtol=0, atol=1e-14)
    modern = LSTM(2, 4).double()
    with torch.no_grad():
        modern.weight_hh_l0.zero_()
    _, (_, c) = modern(x, (h0, c0))
    (grad,) = torch.autograd.grad(c.sum(), c0)
    assert grad.abs().max() < 1e-3  # 100 forget gates near 0.5 multiply it away


def test_cell_states_are_recorded():
    lstm = LSTM(2, 3, batch_first=True)
    _, (_, c) = lstm(torch.randn(4, 9, 2))
    assert len(lstm.cell_states) == 9
    assert_close(lstm.cell_states[-1], c[0])

