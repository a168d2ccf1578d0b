"""The sparse mixture-of-experts layer equals the dense computation it stands for: every expert run
on every example, weighted by the same sparse gates (forward and backward, with and without gate
noise); with k equal to the number of experts it is a dense softly-gated mixture; and the smooth
load P(x, i) is the probability it claims to be, checked by sampling."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from milestones.sequences.moe.model import MixtureOfExperts, active_parameters, cv_squared, expert_parameters

DIM, HIDDEN = 6, 5


def random_layer(experts: int, k: int, seed: int) -> MixtureOfExperts:
    torch.manual_seed(seed)
    layer = MixtureOfExperts(DIM, HIDDEN, experts, k).double()
    with torch.no_grad():  # the gates start at zero; give them random values so the choice matters
        layer.w_gate.normal_()
        layer.w_noise.normal_(0, 0.5)
    return layer


def gradients(layer: MixtureOfExperts, x: torch.Tensor) -> dict:
    return {"x": x.grad} | {name: p.grad for name, p in layer.named_parameters()}


@pytest.mark.parametrize("experts,k,training", [(4, 1, False), (8, 2, False), (8, 3, True), (5, 2, True)])
def test_sparse_dispatch_equals_every_expert_on_every_example(experts, k, training):
    layer = random_layer(experts, k, seed=experts * 10 + k)
    layer.train(training)
    x = torch.randn(40, DIM, dtype=torch.float64)
    weights = torch.randn(40, DIM, dtype=torch.float64)  # a loss that reaches every output
    x_sparse = x.clone().requires_grad_()
    torch.manual_seed(99)  # the same gate noise in both computations
    sparse = layer(x_sparse)
    (sparse * weights).sum().backward()
    sparse_grads = gradients(layer, x_sparse)
    layer.zero_grad(set_to_none=True)

    x_dense = x.clone().requires_grad_()
    torch.manual_seed(99)
    gates, _, _ = layer.gate(x_dense)  # (N, experts)
    dense = sum(gates[:, i:i + 1] * expert(x_dense) for i, expert in enumerate(layer.experts))
    (dense * weights).sum().backward()
    dense_grads = gradients(layer, x_dense)

    assert_close(sparse, dense, rtol=1e-12, atol=1e-12)
    for name, grad in dense_grads.items():
        ours = sparse_grads[name]  # None for an expert no example was sent to: the sparse layer never ran it
        if grad is None:  # w_noise when the gate adds no noise: neither computation uses it
            assert ours is None, name
            continue
        assert_close(torch.zeros_like(grad) if ours is None else ours, grad, rtol=1e-10, atol=1e-12, msg=name)
    assert (gates > 0).sum(1).eq(k).all()  # exactly k experts per example
    assert_close(gates.sum(1), torch.ones(40, dtype=torch.float64))
    assert layer.tokens_per_expert.sum() == 40 * k


def test_with_k_equal_to_the_number_of_experts_it_is_a_dense_soft_mixture():
    layer = random_layer(experts=5, k=5, seed=3).eval()  # eval: no gate noise
    x = torch.randn(30, DIM, dtype=torch.float64)
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = layer(x_ours)
    out.square().sum().backward()
    ours = gradients(layer, x_ours)
    layer.zero_grad(set_to_none=True)
    soft = F.softmax(x_ref @ layer.w_gate, dim=1)  # (N, experts): the classic mixture of experts
    reference = torch.einsum("ne,ned->nd", soft, torch.stack([e(x_ref) for e in layer.experts], 1))
    reference.square().sum().backward()
    assert_close(out, reference, rtol=1e-12, atol=1e-12)
    for name, grad in gradients(layer, x_ref).items():
        if name != "w_noise":  # unused without noise
            assert_close(ours[name], grad, rtol=1e-10, atol=1e-12, msg=name)


def test_without_noise_the_chosen_experts_are_the_top_k_of_the_clean_scores():
    layer = random_layer(experts=7, k=3, seed=4).eval()
    x = torch.randn(50, DIM, dtype=torch.float64)
    gates, chosen, _ = layer.gate(x)
    expected = (x @ layer.w_gate).topk(3, dim=1).indices
    assert torch.equal(chosen.sort(1).values, expected.sort(1).values)
    kept = torch.gather(x @ layer.w_gate, 1, expected)
    assert_close(torch.gather(gates, 1, expected), F.softmax(kept, dim=1))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_smooth_load_is_the_probability_of_staying_in_the_top_k(k):
    """For one example, Load_i = P(x, i): the chance that expert i is among the k chosen when its own
    noise is redrawn and every other score is held. Checked against 400,000 redraws per expert."""
    experts = 6
    layer = random_layer(experts, k, seed=5 + k).train()
    x = torch.randn(1, DIM, dtype=torch.float64)
    torch.manual_seed(7)
    _, _, load = layer.gate(x)
    torch.manual_seed(7)
    noise = torch.randn(1, experts, dtype=torch.float64)  # the draw the gate made
    clean = (x @ layer.w_gate)[0]
    std = (F.softplus(x @ layer.w_noise) + 1e-2)[0]
    scores = clean + noise[0] * std
    generator = torch.Generator().manual_seed(8)
    for i in range(experts):
        redrawn = scores.repeat(400_000, 1)
        redrawn[:, i] = clean[i] + torch.randn(400_000, generator=generator, dtype=torch.float64) * std[i]
        in_top_k = (redrawn.topk(k, dim=1).indices == i).any(1).double().mean()
        assert abs(load[i].item() - in_top_k.item()) < 0.004, (i, load[i].item(), in_top_k.item())
    assert 0.05 < load.sum().item() / k < 1.95  # not a degenerate all-or-nothing example


def test_balance_losses_vanish_for_an_even_load_and_grow_with_imbalance():
    assert cv_squared(torch.tensor([3.0, 3.0, 3.0])).item() == 0.0
    values = torch.tensor([1.0, 2.0, 6.0])
    assert_close(cv_squared(values), values.var() / values.mean() ** 2)
    layer = random_layer(experts=4, k=1, seed=9).train()
    layer(torch.randn(64, DIM, dtype=torch.float64))
    assert layer.balance_loss > 0
    with torch.no_grad():
        layer.w_gate[:, 0] += 50.0  # expert 0 wins everything
    layer(torch.randn(64, DIM, dtype=torch.float64).abs())
    assert layer.tokens_per_expert[0] == 64
    assert layer.balance_loss > 0.1 * 2 * 2.9  # both CV^2 near n - 1 = 3 when one of 4 takes all


def test_parameters_grow_with_experts_while_active_parameters_stay_nearly_flat():
    small, large = MixtureOfExperts(16, 64, 2, 2), MixtureOfExperts(16, 64, 32, 2)
    assert expert_parameters(large) / expert_parameters(small) == 16
    assert active_parameters(large) - active_parameters(small) == 2 * 16 * 30  # only the gate's columns grow
