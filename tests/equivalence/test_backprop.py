"""Both backprop implementations give torch.autograd's gradients, in float64."""

import random

import pytest
import torch
from torch.testing import assert_close

from milestones.foundations.backprop.model import DeltaRuleMLP, ScalarMLP, Value

UNARY = ["exp", "tanh", "sigmoid", "relu", "square", "log_of_square_plus_one", "neg"]
BINARY = ["add", "sub", "mul", "div"]


def apply(op, a, b=None, torch_mode=False):
    """The same operation on Values or on torch tensors."""
    if op == "exp":
        return a.exp()
    if op == "tanh":
        return a.tanh()
    if op == "sigmoid":
        return a.sigmoid()
    if op == "relu":
        return a.relu()
    if op == "square":
        return a ** 2
    if op == "log_of_square_plus_one":
        return (a ** 2 + 1).log()
    if op == "neg":
        return -a
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        return a / (b * b + 1)  # keep the divisor away from zero
    raise ValueError(op)


@pytest.mark.parametrize("seed", range(25))
def test_value_matches_autograd_on_random_expressions(seed):
    rng = random.Random(seed)
    inputs = [rng.uniform(-1.5, 1.5) for _ in range(4)]
    ours = [Value(x) for x in inputs]
    theirs = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
    pool_ours, pool_theirs = list(ours), list(theirs)
    for _ in range(12):  # grow a random DAG; nodes may be reused, so gradients must accumulate
        if rng.random() < 0.4:
            op, i = rng.choice(UNARY), rng.randrange(len(pool_ours))
            pool_ours.append(apply(op, pool_ours[i]))
            pool_theirs.append(apply(op, pool_theirs[i]))
        else:
            op, i, j = rng.choice(BINARY), rng.randrange(len(pool_ours)), rng.randrange(len(pool_ours))
            pool_ours.append(apply(op, pool_ours[i], pool_ours[j]))
            pool_theirs.append(apply(op, pool_theirs[i], pool_theirs[j]))
    out_ours = sum(pool_ours[-4:], Value(0.0))
    out_theirs = sum(pool_theirs[-4:])
    out_ours.backward()
    out_theirs.backward()
    assert out_ours.data == pytest.approx(out_theirs.item(), rel=1e-12, abs=1e-12)
    for o, t in zip(ours, theirs):
        expected = 0.0 if t.grad is None else t.grad.item()
        assert o.grad == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_scalar_mlp_matches_autograd():
    mlp = ScalarMLP([3, 4, 2], seed=1)
    x = [[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]]
    targets = [[1.0, 0.0], [0.0, 1.0]]
    loss = sum(((y - d) ** 2 for xs, ds in zip(x, targets) for y, d in zip(mlp(xs), ds)), Value(0.0)) * 0.5
    loss.backward()
    ws = [torch.tensor([[w.data for w in row] for row in layer], dtype=torch.float64, requires_grad=True)
          for layer in mlp.weights]
    bs = [torch.tensor([b.data for b in layer], dtype=torch.float64, requires_grad=True) for layer in mlp.biases]
    h = torch.tensor(x, dtype=torch.float64)
    for w, b in zip(ws, bs):
        h = torch.sigmoid(h @ w.T + b)
    reference = 0.5 * ((h - torch.tensor(targets, dtype=torch.float64)) ** 2).sum()
    reference.backward()
    assert loss.data == pytest.approx(reference.item(), rel=1e-12)
    for layer, w in zip(mlp.weights, ws):
        assert_close(torch.tensor([[v.grad for v in row] for row in layer], dtype=torch.float64), w.grad)
    for layer, b in zip(mlp.biases, bs):
        assert_close(torch.tensor([v.grad for v in layer], dtype=torch.float64), b.grad)


@pytest.mark.parametrize("sizes", [[2, 2, 1], [8, 3, 8], [5, 7, 6, 3], [4, 1]])
def test_delta_rule_matches_autograd(sizes):
    torch.manual_seed(len(sizes))
    net = DeltaRuleMLP(sizes, init_range=1.0).double()
    x = torch.randn(9, sizes[0], dtype=torch.float64)
    d = torch.rand(9, sizes[-1], dtype=torch.float64)
    out = net(x)
    net.backward(d)
    params = [p.detach().clone().requires_grad_() for p in net.parameters()]
    weights, biases = params[:len(net.weights)], params[len(net.weights):]
    h = x
    for w, b in zip(weights, biases):
        h = torch.sigmoid(h @ w.T + b)
    error = 0.5 * ((h - d) ** 2).sum()
    error.backward()
    assert_close(net.error(out, d), error.detach())
    for ours, reference in zip(net.parameters(), params):
        assert_close(ours.grad, reference.grad, rtol=1e-12, atol=1e-14)


def test_delta_rule_update_with_momentum_is_the_papers_rule():
    """SGD(lr=eps, momentum=alpha) makes dw(t) = -eps dE/dw + alpha dw(t-1), the paper's equation."""
    torch.manual_seed(0)
    net = DeltaRuleMLP([3, 2, 1]).double()
    x, d = torch.randn(4, 3, dtype=torch.float64), torch.rand(4, 1, dtype=torch.float64)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.3, momentum=0.9)
    previous_change = [torch.zeros_like(p) for p in net.parameters()]
    for _ in range(5):
        before = [p.detach().clone() for p in net.parameters()]
        net(x)
        net.backward(d)
        expected = [-0.3 * p.grad + 0.9 * dw for p, dw in zip(net.parameters(), previous_change)]
        optimizer.step()
        previous_change = [p.detach() - b for p, b in zip(net.parameters(), before)]
        for got, want in zip(previous_change, expected):
            assert_close(got, want)
