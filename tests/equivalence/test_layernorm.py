"""Our LayerNorm equals nn.LayerNorm (with and without the affine part), forward and backward; the
recurrent classifier is a standard tanh RNN, with layer norm applied to each step's summed inputs."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from milestones.optimization.layernorm.experiment import TABLE_1, invariance_table
from milestones.optimization.layernorm.model import LayerNorm, RecurrentClassifier


@pytest.mark.parametrize("shape,normalized_shape", [((5, 12), 12), ((3, 7, 12), 12), ((2, 3, 4, 5), (4, 5))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_pytorch_forward_and_backward(shape, normalized_shape, affine):
    torch.manual_seed(0)
    ours = LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=affine).double()
    reference = nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=affine).double()
    if affine:  # non-trivial gain and bias, so that a mix-up between them would show
        with torch.no_grad():
            ours.weight.uniform_(0.5, 1.5)
            ours.bias.normal_()
            reference.weight.copy_(ours.weight)
            reference.bias.copy_(ours.bias)
    x = (torch.randn(shape, dtype=torch.float64) * 4 - 1).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    upstream = torch.randn(shape, dtype=torch.float64)
    y, y_ref = ours(x), reference(x_ref)
    assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    (y * upstream).sum().backward()
    (y_ref * upstream).sum().backward()
    assert_close(x.grad, x_ref.grad, rtol=1e-9, atol=1e-10)
    if affine:
        assert_close(ours.weight.grad, reference.weight.grad, rtol=1e-9, atol=1e-10)
        assert_close(ours.bias.grad, reference.bias.grad, rtol=1e-9, atol=1e-10)
        assert ours.state_dict().keys() == reference.state_dict().keys()


def test_layer_norm_in_float32_matches_pytorch():
    torch.manual_seed(1)
    x = torch.randn(64, 100) * 10 + 3
    assert_close(LayerNorm(100)(x), nn.LayerNorm(100)(x), rtol=1e-5, atol=1e-5)


def test_layer_norm_is_the_same_in_train_and_eval_mode():
    torch.manual_seed(2)
    layer, x = LayerNorm(8), torch.randn(4, 8)
    assert_close(layer.train()(x), layer.eval()(x), rtol=0, atol=0)


def test_wrong_feature_size_is_refused():
    with pytest.raises(ValueError):
        LayerNorm(8)(torch.randn(4, 9))


@pytest.mark.parametrize("layer_norm", [False, True])
def test_recurrent_classifier_is_the_papers_recurrence(layer_norm):
    torch.manual_seed(3)
    model = RecurrentClassifier(3, 6, 4, layer_norm).double()
    if layer_norm:
        with torch.no_grad():
            model.norm.weight.uniform_(0.5, 1.5)
            model.norm.bias.normal_()
    x = torch.randn(5, 9, 3, dtype=torch.float64)
    if layer_norm:  # h_t = tanh(LN(W_hh h_{t-1} + W_xh x_t)), written out with F.layer_norm
        h = torch.zeros(5, 6, dtype=torch.float64)
        for t in range(9):
            a = x[:, t] @ model.input_to_hidden.weight.T + h @ model.hidden_to_hidden.weight.T
            h = torch.tanh(F.layer_norm(a, (6,), model.norm.weight, model.norm.bias, eps=1e-5))
    else:  # without layer norm it is exactly nn.RNN (tanh), whose recurrent bias we zero
        rnn = nn.RNN(3, 6, batch_first=True).double()
        with torch.no_grad():
            rnn.weight_ih_l0.copy_(model.input_to_hidden.weight)
            rnn.bias_ih_l0.copy_(model.input_to_hidden.bias)
            rnn.weight_hh_l0.copy_(model.hidden_to_hidden.weight)
            rnn.bias_hh_l0.zero_()
        h = rnn(x)[1][0]
    assert_close(model(x), model.readout(h), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_table_1_cells_are_exact_or_clearly_violated(seed):
    table = invariance_table(seed)
    for name, row in TABLE_1.items():
        for what, invariant in row.items():
            assert (table[name][what] < 1e-9) == invariant, (name, what, table[name][what])
            assert invariant or table[name][what] > 0.1, (name, what, table[name][what])
