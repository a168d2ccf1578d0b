"""LeNet-5 has the paper's layer shapes, connection table and 60,000 trainable parameters, and its
fast layers equal the from-scratch ones of the cnn module, forward and backward."""

import pytest
import torch
from torch.testing import assert_close

from milestones.foundations.cnn.model import avg_pool2d, conv2d, free_parameters
from milestones.foundations.lenet.model import C3_CONNECTIONS, EuclideanRBF, LeNet5, Subsampling

TOLERANCE = {"rtol": 1e-10, "atol": 1e-12}


def test_layer_shapes_are_the_papers():
    torch.manual_seed(0)
    net = LeNet5()
    shapes = [tuple(t.shape[1:]) for t in net.features(torch.rand(3, 1, 32, 32))]
    assert shapes == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120,), (84,)]
    assert net(torch.rand(3, 1, 32, 32)).shape == (3, 10)


def test_parameter_count_is_60000_layer_by_layer():
    net = LeNet5()
    per_layer = {name: free_parameters(getattr(net, name)) for name in ("c1", "s2", "c3", "s4", "c5", "f6", "output")}
    assert per_layer == {"c1": 6 * 25 + 6, "s2": 6 * 2, "c3": 60 * 25 + 16, "s4": 16 * 2,
                         "c5": 120 * 16 * 25 + 120, "f6": 120 * 84 + 84, "output": 0}
    assert free_parameters(net) == 60_000
    assert free_parameters(LeNet5(partial_c3=False)) == 60_000 + (16 * 6 - 60) * 25  # the full table


def test_c3_table_is_the_papers_table_1():
    """Maps 0-5 read 3 neighbouring S2 maps, 6-11 read 4 neighbouring ones, 12-14 read 4
    non-neighbouring ones, and 15 reads all 6 (neighbours wrap around from map 5 to map 0)."""
    expected = torch.zeros(16, 6, dtype=torch.bool)
    for j in range(6):
        expected[j, [(j + k) % 6 for k in range(3)]] = True
        expected[6 + j, [(j + k) % 6 for k in range(4)]] = True
    for j, maps in enumerate([[0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5]]):
        expected[12 + j, maps] = True
    expected[15] = True
    assert torch.equal(C3_CONNECTIONS, expected)
    assert int(C3_CONNECTIONS.sum()) == 60


@pytest.mark.parametrize("table", [C3_CONNECTIONS, None], ids=["table-1", "full"])
def test_c3_layer_equals_the_from_scratch_convolution(table):
    """C3 (cnn's `Conv2d`, which runs F.conv2d) computes cnn's im2col `conv2d` of the masked kernel."""
    torch.manual_seed(1)
    layer = LeNet5(partial_c3=table is not None).c3.double()
    weight = layer.weight.detach().clone().requires_grad_()
    bias = layer.bias.detach().clone().requires_grad_()
    mask = layer.connections.double()  # (16, 6, 1, 1)
    x = torch.randn(4, 6, 14, 14, dtype=torch.float64)
    upstream = torch.randn(4, 16, 10, 10, dtype=torch.float64)
    outputs, grads = [], []
    for forward, parameters in ((layer, (layer.weight, layer.bias)),
                                (lambda inputs: conv2d(inputs, weight * mask, bias), (weight, bias))):
        inputs = x.clone().requires_grad_()
        y = forward(inputs)
        (y * upstream).sum().backward()
        outputs.append(y)
        grads.append((inputs.grad, *(p.grad for p in parameters)))
    assert_close(outputs[0], outputs[1], **TOLERANCE)
    for ours, reference in zip(*grads):
        assert_close(ours, reference, **TOLERANCE)
    if table is not None:
        assert grads[0][1][~table].abs().max() == 0  # a missing connection never learns


def test_subsampling_is_a_scaled_2x2_sum_plus_bias():
    torch.manual_seed(2)
    layer = Subsampling(6).double()
    x = torch.randn(3, 6, 28, 28, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    window_sums = x.unflatten(2, (14, 2)).unflatten(4, (14, 2)).sum(dim=(3, 5))  # (3, 6, 14, 14)
    expected = layer.coefficient[:, None, None] * window_sums + layer.bias[:, None, None]
    assert_close(y, expected, **TOLERANCE)
    assert_close(y, layer.coefficient[:, None, None] * 4 * avg_pool2d(x, 2) + layer.bias[:, None, None],
                 **TOLERANCE)
    upstream = torch.randn_like(y)
    ours = torch.autograd.grad((y * upstream).sum(), (x, layer.coefficient, layer.bias))
    theirs = torch.autograd.grad((expected * upstream).sum(), (x, layer.coefficient, layer.bias))
    for a, b in zip(ours, theirs):
        assert_close(a, b, **TOLERANCE)


def test_rbf_outputs_are_squared_distances_to_fixed_codes():
    torch.manual_seed(3)
    net = LeNet5()
    codes = net.output.codes
    assert codes.shape == (10, 84) and set(codes.unique().tolist()) == {-1.0, 1.0}
    assert "output.codes" not in dict(net.named_parameters())  # fixed, not trained
    assert (torch.cdist(codes, codes) + 100 * torch.eye(10)).min() > 4  # every pair differs in > 4 bits
    x = torch.randn(5, 84, dtype=torch.float64)
    rbf = EuclideanRBF(codes.double())
    assert_close(rbf(x), torch.cdist(x, codes.double()).square(), rtol=1e-9, atol=1e-9)
    images = torch.rand(7, 1, 32, 32)
    assert torch.equal(net(images).argmax(1), net.penalties(images).argmin(1))  # the class is the nearest code


def test_lenet_features_match_a_from_scratch_forward_pass():
    """The whole network once more, with the cnn module's conv2d and avg_pool2d in every layer."""
    torch.manual_seed(4)
    net = LeNet5().double()
    x = torch.rand(2, 1, 32, 32, dtype=torch.float64)

    def squash(a):
        return 1.7159 * torch.tanh(2 * a / 3)

    def conv(layer, h):
        return conv2d(h, layer.weight * layer.connections, layer.bias)

    def sub(layer, h):
        return layer.coefficient[:, None, None] * 4 * avg_pool2d(h, 2) + layer.bias[:, None, None]

    h = squash(sub(net.s4, squash(conv(net.c3, squash(sub(net.s2, squash(conv(net.c1, x))))))))
    h = squash(conv(net.c5, h).flatten(1))
    h = squash(h @ net.f6.weight.T + net.f6.bias)
    assert_close(net.features(x)[-1], h, **TOLERANCE)
    assert_close(net(x), -torch.cdist(h, net.output.codes).square() / 84, **TOLERANCE)
