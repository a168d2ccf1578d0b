"""Our im2col convolution and our pooling equal PyTorch's, forward and backward, in float64."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from milestones.foundations.cnn.model import (
    ZIP_H2_CONNECTIONS,
    Conv2d,
    ZipCodeNet,
    avg_pool2d,
    conv2d,
    free_parameters,
    max_pool2d,
)

TOLERANCE = {"rtol": 1e-10, "atol": 1e-12}


def leaf(*shape, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, dtype=torch.float64, generator=generator).requires_grad_()


def forward_and_backward(function, inputs, seed):
    """The output and the gradient of a random linear function of it with respect to every input."""
    out = function(*inputs)
    weights = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    grads = torch.autograd.grad((out * weights).sum(), inputs)
    return out, grads


# (batch, in channels, out channels, height, width, kernel (h, w), stride, padding)
CONV_CASES = [
    (2, 1, 1, 7, 7, (3, 3), 1, 0),
    (3, 3, 5, 9, 11, (3, 3), 1, 1),
    (2, 4, 6, 16, 16, (5, 5), 2, 2),
    (1, 2, 3, 10, 8, (3, 5), (2, 1), (1, 2)),
    (4, 6, 16, 14, 14, (5, 5), 1, 0),
    (2, 3, 2, 12, 13, (4, 4), 3, 1),
    (2, 5, 4, 5, 5, (5, 5), 1, 0),  # the kernel covers the whole input: a fully connected layer
]


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_matches_torch(case, with_bias):
    batch, c_in, c_out, h, w, kernel, stride, padding = case
    x, weight, bias = leaf(batch, c_in, h, w, seed=1), leaf(c_out, c_in, *kernel, seed=2), leaf(c_out, seed=3)
    inputs = (x, weight, bias) if with_bias else (x, weight)
    ours, our_grads = forward_and_backward(lambda *a: conv2d(*a, stride=stride, padding=padding), inputs, seed=4)
    theirs, their_grads = forward_and_backward(lambda *a: F.conv2d(*a, stride=stride, padding=padding), inputs,
                                               seed=4)
    assert ours.shape == theirs.shape
    assert_close(ours, theirs, **TOLERANCE)
    for mine, reference in zip(our_grads, their_grads):
        assert_close(mine, reference, **TOLERANCE)


# (channels, height, width, kernel, stride, padding); stride None means stride = kernel
POOL_CASES = [
    (1, 8, 8, 2, None, 0),
    (6, 28, 28, 2, 2, 0),
    (3, 9, 7, 3, 2, 1),
    (4, 10, 10, 3, 1, 1),
    (2, 11, 13, (2, 3), (1, 2), (1, 1)),
    (5, 7, 7, 3, None, 0),  # the last row and column fit no window and are dropped
]


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_pooling_matches_torch(case, pool):
    channels, h, w, kernel, stride, padding = case
    ours_fn, theirs_fn = (max_pool2d, F.max_pool2d) if pool == "max" else (avg_pool2d, F.avg_pool2d)
    x = leaf(3, channels, h, w, seed=5)
    ours, (our_grad,) = forward_and_backward(lambda t: ours_fn(t, kernel, stride, padding), (x,), seed=6)
    theirs, (their_grad,) = forward_and_backward(lambda t: theirs_fn(t, kernel, stride, padding), (x,), seed=6)
    assert ours.shape == theirs.shape
    assert_close(ours, theirs, **TOLERANCE)
    assert_close(our_grad, their_grad, **TOLERANCE)


def test_max_pool_gradient_goes_to_the_maximum_only():
    x = torch.tensor([[[[1.0, 5.0], [2.0, 3.0]]]], requires_grad=True)
    max_pool2d(x, 2).sum().backward()
    assert_close(x.grad, torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]]]))


def test_connection_table_and_unit_biases():
    """The layer (which runs F.conv2d) computes our `conv2d` of the masked kernel; a partial table
    is a convolution whose missing weights are zero and stay zero; unit biases add one number per
    output position."""
    torch.manual_seed(0)
    layer = Conv2d(12, 12, 5, stride=2, padding=2, connections=ZIP_H2_CONNECTIONS, unit_bias=(4, 4)).double()
    x = leaf(2, 12, 8, 8, seed=7)
    y = layer(x)
    mask = ZIP_H2_CONNECTIONS.double()[:, :, None, None]
    weight, bias = (p.detach().clone().requires_grad_() for p in (layer.weight, layer.bias))
    reference = conv2d(x.detach(), weight * mask, stride=2, padding=2) + bias
    assert_close(y, reference, **TOLERANCE)
    y.square().sum().backward()
    reference.square().sum().backward()
    assert_close(layer.weight.grad, weight.grad, **TOLERANCE)
    assert_close(layer.bias.grad, bias.grad, **TOLERANCE)
    missing = ~ZIP_H2_CONNECTIONS
    assert layer.weight.grad[missing].abs().max() == 0
    assert layer.weight.grad[ZIP_H2_CONNECTIONS].abs().min() > 0
    assert layer.weight.detach()[missing].abs().max() == 0
    assert layer.free_parameters() == 12 * 8 * 25 + 12 * 16


def test_h2_table_gives_every_map_eight_inputs_and_eight_outputs():
    assert ZIP_H2_CONNECTIONS.sum(1).tolist() == [8] * 12
    assert ZIP_H2_CONNECTIONS.sum(0).tolist() == [8] * 12


def test_zip_code_net_has_the_papers_shapes_and_9760_free_parameters():
    net = ZipCodeNet()
    x = torch.rand(5, 1, 16, 16)
    h1 = net.h1(x)
    h2 = net.h2(h1)
    assert h1.shape == (5, 12, 8, 8) and h2.shape == (5, 12, 4, 4)
    assert net(x).shape == (5, 10)
    assert free_parameters(net) == 9760  # the paper's count
    hidden_units = 12 * 8 * 8 + 12 * 4 * 4 + 30 + 10
    assert hidden_units == 1256 - 256  # the paper's 1,256 units, input included
