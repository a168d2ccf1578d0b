"""The forget-gate predictor equals nn.LSTM + nn.Linear with copied weights (forward and backward);
reading a stream in chunks with the state carried equals one uninterrupted pass; the recorded
forget gates are exactly dc_t/dc_(t-1) of the cell; and the gate does what the paper says: closed,
it wipes the cell, while without it a constant input makes the cell grow linearly without bound."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from milestones.sequences.forget_gate.model import (
    ReberPredictor,
    correct_predictions,
    forget_gate_values,
    process_stream,
)

SYMBOLS, HIDDEN = 7, 5


def reference_of(model: ReberPredictor) -> tuple[nn.LSTM, nn.Linear]:
    lstm = nn.LSTM(SYMBOLS, HIDDEN, batch_first=True).double()
    lstm.load_state_dict(model.lstm.state_dict())  # same names and shapes, or this raises
    readout = nn.Linear(HIDDEN, SYMBOLS).double()
    readout.load_state_dict(model.readout.state_dict())
    return lstm, readout


@pytest.mark.parametrize("with_state", [False, True])
def test_matches_nn_lstm_and_linear_forward_and_backward(with_state):
    torch.manual_seed(1 + with_state)
    model = ReberPredictor(SYMBOLS, HIDDEN).double()
    with torch.no_grad():  # random biases, so the test does not depend on the forget-bias init
        for p in model.parameters():
            p.normal_(0, 0.5)
    lstm, readout = reference_of(model)
    symbols = torch.randint(SYMBOLS, (3, 11))
    state = tuple(torch.randn(1, 3, HIDDEN, dtype=torch.float64) for _ in range(2)) if with_state else None
    logits, (h, c) = model(symbols, state)
    out, (h_ref, c_ref) = lstm(nn.functional.one_hot(symbols, SYMBOLS).double(), state)
    logits_ref = readout(out)
    assert_close(logits, logits_ref, rtol=1e-12, atol=1e-12)
    assert_close((h, c), (h_ref, c_ref), rtol=1e-12, atol=1e-12)
    target = torch.rand(3, 11, SYMBOLS, dtype=torch.float64)
    nn.functional.binary_cross_entropy_with_logits(logits, target).backward()
    nn.functional.binary_cross_entropy_with_logits(logits_ref, target).backward()
    ours = dict(model.named_parameters())
    for name, p in lstm.named_parameters():
        assert_close(ours[f"lstm.{name}"].grad, p.grad, rtol=1e-10, atol=1e-12, msg=name)
    for name, p in readout.named_parameters():
        assert_close(ours[f"readout.{name}"].grad, p.grad, rtol=1e-10, atol=1e-12, msg=name)


def test_forget_bias_initialisation_sets_only_the_f_rows():
    model = ReberPredictor(SYMBOLS, HIDDEN, forget_bias=2.0)
    f_bias = model.lstm.bias_ih_l0[HIDDEN:2 * HIDDEN] + model.lstm.bias_hh_l0[HIDDEN:2 * HIDDEN]
    assert_close(f_bias, torch.full((HIDDEN,), 2.0))
    others = torch.cat([model.lstm.bias_ih_l0[:HIDDEN], model.lstm.bias_ih_l0[2 * HIDDEN:]])
    assert not torch.isclose(others, torch.tensor(2.0)).any()


def test_chunked_stream_equals_one_uninterrupted_pass():
    torch.manual_seed(3)
    model = ReberPredictor(SYMBOLS, HIDDEN).double()
    symbols = torch.randint(SYMBOLS, (2, 53))
    whole, whole_magnitude = process_stream(model, symbols, chunk=1000)
    chunked, chunked_magnitude = process_stream(model, symbols, chunk=7)  # 7 does not divide 53
    assert_close(chunked, whole, rtol=1e-12, atol=1e-12)
    assert_close(chunked_magnitude, whole_magnitude, rtol=1e-12, atol=1e-12)
    reset_each_chunk = torch.cat([model(symbols[:, s:s + 7])[0] for s in range(0, 53, 7)], 1)
    assert not torch.allclose(reset_each_chunk, whole)  # carrying the state does matter


def test_forget_gate_values_are_the_cells_self_derivative():
    """Holding h_(t-1) fixed, dc_t/dc_(t-1) = diag(f_t): the recorded f is the factor on the carousel."""
    torch.manual_seed(4)
    model = ReberPredictor(SYMBOLS, HIDDEN).double()
    symbols = torch.randint(SYMBOLS, (1, 9))
    f = forget_gate_values(model, symbols)[0]  # (T, H)
    x = nn.functional.one_hot(symbols, SYMBOLS).double()
    h_all, _ = model.lstm(x)
    w_ih, w_hh, b_ih, b_hh = model.lstm.layer_weights(0)
    for t in range(1, 9):
        gates = x[0, t] @ w_ih.T + h_all[0, t - 1] @ w_hh.T + b_ih + b_hh
        c_before = model.lstm.cell_states[t - 1][0].detach()  # (H,)
        jacobian = torch.autograd.functional.jacobian(lambda c: model.lstm.cell(gates[None], c[None])[1][0], c_before)
        assert_close(jacobian, torch.diag(f[t]), rtol=1e-12, atol=1e-12)


def test_a_closed_forget_gate_wipes_the_cell_and_an_open_one_keeps_it():
    torch.manual_seed(5)
    model = ReberPredictor(SYMBOLS, HIDDEN).double()
    symbols = torch.randint(SYMBOLS, (2, 6))
    c0 = torch.randn(1, 2, HIDDEN, dtype=torch.float64, requires_grad=True)
    h0 = torch.zeros(1, 2, HIDDEN, dtype=torch.float64)
    model(symbols, (h0, c0))[0].sum().backward()
    assert c0.grad.abs().max() > 1e-3  # an ordinary gate lets the old cell matter
    with torch.no_grad():
        model.lstm.bias_ih_l0[HIDDEN:2 * HIDDEN] = -60.0  # f = sigmoid(-60) ~ 1e-26
    c0.grad = None
    model(symbols, (h0, c0))[0].sum().backward()
    assert c0.grad.abs().max() < 1e-20  # after one closed gate, nothing of c0 is left


@pytest.mark.parametrize("forget_gate", [False, True])
def test_without_forget_gates_a_constant_input_makes_the_cell_grow_linearly(forget_gate):
    """i = g = 1 at every step: the 1997 cell counts up c_t = t, the forget-gate cell (f = sigmoid(1))
    rises to the fixed point c = 1 / (1 - f) and stays below it."""
    model = ReberPredictor(SYMBOLS, HIDDEN, forget_gate=forget_gate).double()
    with torch.no_grad():
        for p in model.lstm.parameters():
            p.zero_()
        gates = 4 if forget_gate else 3
        bias = model.lstm.bias_ih_l0.view(gates, HIDDEN)
        bias[0], bias[2 if forget_gate else 1] = 60.0, 60.0  # i = sigmoid(60) = 1, g = tanh(60) = 1
        if forget_gate:
            bias[1] = 1.0
    _, magnitude = process_stream(model, torch.zeros(1, 40, dtype=torch.long))
    if forget_gate:
        f = torch.sigmoid(torch.tensor(1.0, dtype=torch.float64))
        expected = (1 - f ** torch.arange(1, 41)) / (1 - f)  # c_t = f c_(t-1) + 1, summed: bounded by 1 / (1 - f)
        assert_close(magnitude[0], expected, rtol=1e-12, atol=1e-12)
    else:
        assert_close(magnitude[0], torch.arange(1, 41, dtype=torch.float64), rtol=1e-12, atol=1e-12)


def test_correct_predictions_is_the_papers_threshold_criterion():
    legal = torch.tensor([[0, 1, 0, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1.0]])
    logits = torch.tensor([[-3, 2, -1, -5, 0.1, -2, -2],  # exactly T and P above 0.5: right
                           [4, 0.2, -1, -1, -1, -1, -1],  # B right, but T also switched on: wrong
                           [-1, -1, -1, -1, -1, -1, -0.1]])  # E below 0.5: wrong
    assert correct_predictions(logits, legal).tolist() == [True, False, False]
