"""The VQ-VAE's pieces against references written out independently: nearest-code quantization against a
brute-force argmin over torch.cdist distances; the straight-through gradient against dL/dz_q computed
by autograd with z_q as a leaf; the codebook and commitment losses and their gradients against their
definitions, summed in loops; the moving-average codebook update against the appendix's formulas in
float64 loops; the PixelCNN's masks against causality measured by autograd (each symbol's logits depend
on every earlier symbol and on no later one). Each test has a control that a plausible mistake fails.

Tolerances: everything runs in float64 and agrees to rounding (1e-12)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from milestones.generative.vqvae.model import (
    VQVAE,
    MaskedConv2d,
    PixelCNN,
    VectorQuantizer,
    VQVAEConfig,
    ema_update,
    nearest_code,
    nearest_code_grid,
    perplexity,
    straight_through,
    vq_losses,
)

EXACT = dict(rtol=1e-12, atol=1e-12)


def test_nearest_code_is_the_brute_force_argmin():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(500, 6, generator=g, dtype=torch.float64)
    codebook = torch.randn(40, 6, generator=g, dtype=torch.float64)
    reference = torch.cdist(z, codebook).argmin(1)
    assert torch.equal(nearest_code(z, codebook), reference)
    assert not torch.equal(torch.cdist(z, codebook).argmax(1), reference)  # control: the farthest code differs
    grid = z[:48].reshape(3, 4, 4, 6).permute(0, 3, 1, 2)  # (B, D, H, W): row (b, h, w) of z
    assert torch.equal(nearest_code_grid(grid, codebook), reference[:48].view(3, 4, 4))


def test_straight_through_hands_the_gradient_to_z_e_unchanged():
    g = torch.Generator().manual_seed(1)
    z_e = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    codebook = torch.randn(8, 3, generator=g, dtype=torch.float64)
    weight = torch.randn(5, 3, 3, 3, generator=g, dtype=torch.float64)
    loss_of = lambda z: F.conv2d(torch.tanh(z), weight).square().sum()  # noqa: E731  (any nonlinear L)
    z_q = codebook[nearest_code_grid(z_e.detach(), codebook)].permute(0, 3, 1, 2)
    out = straight_through(z_e, z_q)
    assert_close(out, z_q, **EXACT)  # the forward pass is the quantized vector
    (grad_z_e,) = torch.autograd.grad(loss_of(out), z_e)
    leaf = z_q.clone().requires_grad_()
    (grad_z_q,) = torch.autograd.grad(loss_of(leaf), leaf)  # dL/dz_q, with z_q a leaf
    assert_close(grad_z_e, grad_z_q, **EXACT)
    # controls: the gradient at z_e itself (no quantization) differs, and without the trick z_e gets none
    (at_z_e,) = torch.autograd.grad(loss_of(z_e), z_e)
    assert (at_z_e - grad_z_q).abs().max() > 1e-3
    assert not loss_of(z_q).requires_grad


def test_quantizer_module_passes_the_gradient_straight_through():
    torch.manual_seed(2)
    quantizer = VectorQuantizer(8, 3, ema=True).double()
    z_e = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    quantizer.eval()  # no update of the codebook: z_q is the lookup of the current codes
    z_q, codes, codebook_loss, commitment = quantizer(z_e)
    assert torch.equal(codes, nearest_code_grid(z_e.detach(), quantizer.codebook))
    target = torch.randn_like(z_e)
    (grad,) = torch.autograd.grad((z_q * target).sum(), z_e)
    assert_close(grad, target, **EXACT)  # d(sum z_q * t)/dz_q = t, handed to z_e as it is
    assert torch.all(codebook_loss == 0)  # under EMA the codes do not learn by gradient


def test_losses_equal_their_definitions_and_send_gradients_where_they_should():
    g = torch.Generator().manual_seed(3)
    z_e = torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    codebook = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    codes = nearest_code_grid(z_e.detach(), codebook.detach())
    z_q = codebook[codes].permute(0, 3, 1, 2)
    codebook_loss, commitment = vq_losses(z_e, z_q)
    for b in range(2):  # || sg[z_e] - e ||^2 and || z_e - sg[e] ||^2, summed over the grid of image b
        total = sum(float(((z_e[b, :, i, j] - codebook[codes[b, i, j]]).detach() ** 2).sum())
                    for i in range(2) for j in range(2))
        assert math.isclose(codebook_loss[b].item(), total, rel_tol=1e-12)
        assert math.isclose(commitment[b].item(), total, rel_tol=1e-12)
    grad_e_codebook, grad_z_codebook = torch.autograd.grad(codebook_loss.sum(), (codebook, z_e), allow_unused=True,
                                                           materialize_grads=True)
    grad_e_commit, grad_z_commit = torch.autograd.grad(commitment.sum(), (codebook, z_e), allow_unused=True,
                                                       materialize_grads=True)
    assert torch.all(grad_z_codebook == 0) and torch.all(grad_e_commit == 0)  # each loss reaches one side only
    expected_e = torch.zeros_like(codebook)  # d/de_k sum_{positions with code k} ||z - e_k||^2 = sum 2 (e_k - z)
    for b in range(2):
        for i in range(2):
            for j in range(2):
                k = codes[b, i, j]
                expected_e[k] += 2 * (codebook[k] - z_e[b, :, i, j]).detach()
    assert_close(grad_e_codebook, expected_e, **EXACT)
    assert_close(grad_z_commit, 2 * (z_e - z_q).detach(), **EXACT)


def test_vqvae_loss_is_reconstruction_plus_codebook_plus_beta_commitment():
    torch.manual_seed(4)
    model = VQVAE(VQVAEConfig(hidden=6, residual_blocks=1, code_dim=3, num_codes=7, beta=0.3, ema=False)).double()
    model.quantizer.started.fill_(True)  # keep the random codes
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    loss, _ = model.loss(x)
    z_e = model.encoder(x)
    z_q = model.quantizer.lookup(nearest_code_grid(z_e, model.quantizer.codebook))
    p = torch.sigmoid(model.decoder(z_q))
    nll = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)  # Bernoulli -log p(x | z_q)
    distance = (z_e - z_q).square().flatten(1).sum(1)
    assert_close(loss, (nll + distance + 0.3 * distance).mean(), rtol=1e-10, atol=1e-10)
    assert not torch.isclose(loss, (nll + distance).mean())  # control: beta counts


def paper_ema(counts, sums, batches, decay):
    """The appendix's update written per code with Python floats: N_i <- g N_i + (1 - g) n_i,
    m_i <- g m_i + (1 - g) sum of the vectors assigned to i, e_i = m_i / N_i."""
    counts, sums = [float(c) for c in counts], [[float(v) for v in row] for row in sums]
    for z, codes in batches:
        for i in range(len(counts)):
            members = [z[j] for j in range(len(z)) if codes[j] == i]
            counts[i] = decay * counts[i] + (1 - decay) * len(members)
            for d in range(len(sums[i])):
                sums[i][d] = decay * sums[i][d] + (1 - decay) * sum(float(m[d]) for m in members)
    return torch.tensor([[s / n for s in row] for row, n in zip(sums, counts)], dtype=torch.float64)


def test_ema_update_equals_the_papers_formulas():
    g = torch.Generator().manual_seed(5)
    k, d, decay = 6, 3, 0.9
    counts = torch.rand(k, generator=g, dtype=torch.float64) + 0.5
    sums = torch.randn(k, d, generator=g, dtype=torch.float64)
    batches = []
    for _ in range(4):
        z = torch.randn(20, d, generator=g, dtype=torch.float64)
        codes = torch.randint(k - 1, (20,), generator=g)  # code k - 1 is never chosen
        batches.append((z, codes))
    reference = paper_ema(counts.tolist(), sums.tolist(), batches, decay)
    start = sums[-1] / counts[-1]
    ours_counts, ours_sums = counts.clone(), sums.clone()
    for z, codes in batches:
        codebook = ema_update(ours_counts, ours_sums, z, codes, decay)
    assert_close(codebook, reference, **EXACT)
    assert_close(codebook[-1], start, **EXACT)  # an unused code stays where it was
    wrong = paper_ema(counts.tolist(), sums.tolist(), batches, 1 - decay)  # control: gamma and 1 - gamma swapped
    assert (wrong - reference).abs().max() > 1e-3


def test_quantizer_updates_its_codebook_by_ema_in_training_only():
    torch.manual_seed(6)
    quantizer = VectorQuantizer(5, 2, ema=True, decay=0.8).double()
    z_e = torch.randn(3, 2, 2, 2, dtype=torch.float64)
    quantizer.train()
    quantizer(z_e)  # the first training call starts the codes from the batch, then updates them
    before = quantizer.codebook.clone()
    counts, sums = quantizer.counts.clone(), quantizer.sums.clone()
    z_e = torch.randn(3, 2, 2, 2, dtype=torch.float64)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 2)
    codes = nearest_code(flat, before)
    quantizer(z_e)
    assert_close(quantizer.codebook, paper_ema(counts.tolist(), sums.tolist(), [(flat, codes)], 0.8), **EXACT)
    quantizer.eval()
    after = quantizer.codebook.clone()
    quantizer(torch.randn(3, 2, 2, 2, dtype=torch.float64))
    assert torch.equal(quantizer.codebook, after)


def test_codes_start_from_the_first_batch():
    torch.manual_seed(7)
    quantizer = VectorQuantizer(4, 2).double()
    z_e = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    quantizer.start_from(z_e.permute(0, 2, 3, 1).reshape(-1, 2))
    rows = z_e.permute(0, 2, 3, 1).reshape(-1, 2)
    assert all((torch.cdist(code[None], rows) < 1e-12).any() for code in quantizer.codebook)
    assert bool(quantizer.started)


def test_perplexity():
    assert math.isclose(perplexity(torch.arange(8).repeat(3), 8), 8.0, rel_tol=1e-12)
    assert math.isclose(perplexity(torch.full((10,), 3), 8), 1.0, rel_tol=1e-12)
    p = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    assert math.isclose(perplexity(torch.tensor([0, 0, 1, 2]), 5), math.exp(-(p * p.log()).sum().item()), rel_tol=1e-12)


def test_masked_convolution_is_a_convolution_with_the_future_zeroed():
    torch.manual_seed(8)
    for kind in ("A", "B"):
        conv = MaskedConv2d(2, 3, 5, kind).double()
        weight = conv.weight.detach().clone()
        weight[:, :, 3:] = 0  # rows below the centre
        weight[:, :, 2, 3:] = 0  # right of the centre
        if kind == "A":
            weight[:, :, 2, 2] = 0  # the centre itself
        x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
        assert_close(conv(x), F.conv2d(x, weight, conv.bias, padding=2), **EXACT)


@pytest.mark.parametrize("grid", [3, 4])
def test_pixelcnn_sees_every_earlier_symbol_and_no_later_one(grid):
    torch.manual_seed(9)
    prior = PixelCNN(num_codes=5, grid=grid, hidden=8, layers=2).double()
    codes = torch.randint(5, (1, grid, grid))
    labels = torch.tensor([3])
    embedded = prior.embed(codes).detach().requires_grad_()  # differentiate through the symbols' embeddings

    def logits_from(e):
        bias = prior.label(labels)[:, :, None, None]
        h = prior.first(e.permute(0, 3, 1, 2))
        for layer in prior.layers:
            h = h + layer(F.relu(h + bias))
        return prior.out(F.relu(h + bias))

    assert_close(logits_from(prior.embed(codes)), prior(codes, labels), **EXACT)
    for i in range(grid * grid):
        (grad,) = torch.autograd.grad(logits_from(embedded)[0, :, i // grid, i % grid].sum(), embedded)
        depends = grad[0].abs().sum(-1).flatten() > 0  # (G G,): which symbols position i's logits depend on
        assert torch.equal(depends, torch.arange(grid * grid) < i), f"position {i}"


def test_samples_follow_the_prior():
    torch.manual_seed(10)
    prior = PixelCNN(num_codes=4, grid=2, hidden=8, layers=1)
    labels = torch.zeros(4000, dtype=torch.long)
    samples = prior.sample(labels, torch.Generator().manual_seed(0))
    first = torch.bincount(samples[:, 0, 0], minlength=4).double() / len(labels)
    with torch.no_grad():
        p = prior(samples[:1], labels[:1])[0, :, 0, 0].softmax(0).double()  # the first symbol depends on nothing
    assert_close(first, p, rtol=0, atol=0.03)  # 4000 draws: standard error below 0.008
