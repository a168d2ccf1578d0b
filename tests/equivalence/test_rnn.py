"""ElmanRNN equals nn.RNN (tanh) with copied weights: outputs, final states and every gradient; and
real-time recurrent learning gives the same gradient as backpropagation through time."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from milestones.sequences.rnn.model import ElmanRNN, rtrl_gradients


def twins(input_size, hidden_size, num_layers, batch_first, dtype=torch.float64):
    ours = ElmanRNN(input_size, hidden_size, num_layers, batch_first=batch_first).to(dtype)
    reference = nn.RNN(input_size, hidden_size, num_layers, nonlinearity="tanh", batch_first=batch_first).to(dtype)
    reference.load_state_dict(ours.state_dict())  # same parameter names, so strict loading must succeed
    return ours, reference


@pytest.mark.parametrize("num_layers,batch_first,with_h0", [(1, False, False), (1, True, True), (3, False, True),
                                                            (2, True, False)])
def test_matches_nn_rnn_forward_and_backward(num_layers, batch_first, with_h0):
    torch.manual_seed(num_layers * 10 + batch_first)
    ours, reference = twins(5, 7, num_layers, batch_first)
    shape = (4, 9, 5) if batch_first else (9, 4, 5)
    x = torch.randn(*shape, dtype=torch.float64)
    h0 = torch.randn(num_layers, 4, 7, dtype=torch.float64) if with_h0 else None
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, h_n = ours(x_ours, h0)
    out_ref, h_n_ref = reference(x_ref, h0)
    assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    assert_close(h_n, h_n_ref, rtol=1e-12, atol=1e-12)
    # a loss that weights every output and final state differently, so no gradient can hide
    w_out, w_h = torch.randn_like(out), torch.randn_like(h_n)
    ((out * w_out).sum() + (h_n * w_h).sum()).backward()
    ((out_ref * w_out).sum() + (h_n_ref * w_h).sum()).backward()
    assert_close(x_ours.grad, x_ref.grad, rtol=1e-10, atol=1e-12)
    for (name, p), (name_ref, p_ref) in zip(ours.named_parameters(), reference.named_parameters()):
        assert name == name_ref
        assert_close(p.grad, p_ref.grad, rtol=1e-10, atol=1e-12, msg=name)


def test_matches_nn_rnn_in_float32():
    torch.manual_seed(3)
    ours, reference = twins(3, 16, 2, True, dtype=torch.float32)
    x = torch.randn(8, 30, 3)
    out, _ = ours(x)
    out_ref, _ = reference(x)
    assert_close(out, out_ref, rtol=1e-5, atol=1e-5)
    out.square().sum().backward()
    out_ref.square().sum().backward()
    for p, p_ref in zip(ours.parameters(), reference.parameters()):
        assert_close(p.grad, p_ref.grad, rtol=1e-4, atol=1e-5)


def test_states_are_the_per_step_outputs_and_carry_the_gradient():
    torch.manual_seed(4)
    rnn = ElmanRNN(2, 6, 2).double()
    out, _ = rnn(torch.randn(5, 3, 2, dtype=torch.float64))
    assert len(rnn.states) == 5
    assert_close(torch.stack(rnn.states), out)
    grads = torch.autograd.grad(out[-1].sum(), rnn.states)  # dL/dh_t through time, not just the direct path
    assert grads[0].abs().sum() > 0


@pytest.mark.parametrize("seed", range(3))
def test_rtrl_equals_backpropagation_through_time(seed):
    torch.manual_seed(seed)
    rnn = ElmanRNN(3, 5).double()
    with torch.no_grad():  # larger recurrent weights, so the gradient depends strongly on the past
        rnn.weight_hh_l0.mul_(3)
    readout = nn.Linear(5, 4).double()
    x = torch.randn(12, 6, 3, dtype=torch.float64)
    targets = torch.randint(4, (12, 6))

    def step_loss(t, h):
        return F.cross_entropy(readout(h), targets[t], reduction="sum")

    rtrl = rtrl_gradients(rnn, x, step_loss)
    out, _ = rnn(x)
    sum(step_loss(t, out[t]) for t in range(12)).backward()
    for name, p in rnn.named_parameters():
        assert_close(rtrl[name], p.grad, rtol=1e-10, atol=1e-12, msg=name)
