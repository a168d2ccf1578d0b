"""VQ-VAE-2's arrangement of two code levels against the same computation written out step by step. The
quantizer itself (nearest code, straight-through gradient, losses, EMA update) is the VQ-VAE's and is
proven in test_vqvae.py; here: the codes that `encode` returns are the nearest codes of the two levels'
encoder outputs, the bottom level computed from the *quantized* top level; `decode` of a model's own
codes reproduces its forward pass; the loss is the reconstruction plus beta times both commitment
terms; the bottom codes depend on the top codes (the conditioning) and the gradient reaches the top
encoder through both levels' straight-through copies. Float64, agreement to rounding (1e-12)."""

import torch
import torch.nn.functional as F
from torch.testing import assert_close

from milestones.generative.vqvae.model import nearest_code_grid
from milestones.generative.vqvae2.model import VQVAE2, VQVAE2Config

EXACT = dict(rtol=1e-12, atol=1e-12)


def model(seed: int = 0) -> VQVAE2:
    torch.manual_seed(seed)
    net = VQVAE2(VQVAE2Config(hidden=6, code_dim=3, top_codes=5, bottom_codes=7, beta=0.3)).double()
    net.train()
    net(torch.rand(8, 1, 8, 8, dtype=torch.float64))  # start both codebooks from a batch
    return net.eval()


def written_out(net: VQVAE2, x: torch.Tensor):
    """The forward pass by hand: bottom features, top code, decoded top, bottom code, decoder."""
    h = net.encode_bottom(x)
    e_top = net.encode_top(h)
    top = nearest_code_grid(e_top, net.quantize_top.codebook)
    q_top = net.quantize_top.codebook[top].permute(0, 3, 1, 2)
    e_bottom = net.pre_bottom(torch.cat([F.relu(h), net.decode_top(q_top)], 1))
    bottom = nearest_code_grid(e_bottom, net.quantize_bottom.codebook)
    q_bottom = net.quantize_bottom.codebook[bottom].permute(0, 3, 1, 2)
    logits = net.decoder(torch.cat([net.upsample_top(q_top), q_bottom], 1))
    commitments = [(e - q).square().flatten(1).sum(1) for e, q in ((e_top, q_top), (e_bottom, q_bottom))]
    return top, bottom, logits, *commitments


def test_codes_and_reconstruction_equal_the_written_out_hierarchy():
    net = model()
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    top, bottom, logits, _, _ = written_out(net, x)
    ours_top, ours_bottom = net.encode(x)
    assert ours_top.shape == (4, 2, 2) and ours_bottom.shape == (4, 4, 4)
    assert torch.equal(ours_top, top) and torch.equal(ours_bottom, bottom)
    assert_close(net.decode(top, bottom), torch.sigmoid(logits), **EXACT)
    forward_logits, (f_top, f_bottom), _ = net(x)
    assert torch.equal(f_top, top) and torch.equal(f_bottom, bottom)
    assert_close(forward_logits, logits, **EXACT)


def test_loss_is_reconstruction_plus_beta_times_both_commitments():
    net = model(1)
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    _, _, logits, commit_top, commit_bottom = written_out(net, x)
    p = torch.sigmoid(logits)
    nll = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
    loss, _ = net.loss(x)
    assert_close(loss, (nll + 0.3 * (commit_top + commit_bottom)).mean(), rtol=1e-10, atol=1e-10)
    without_top = (nll + 0.3 * commit_bottom).mean()  # control: the top level's term counts
    assert commit_top.min() > 0 and (loss - without_top).abs() > 1e-3 * commit_top.mean()


def test_bottom_codes_are_conditioned_on_the_top_codes():
    net = model(2)
    x = torch.rand(64, 1, 8, 8, dtype=torch.float64)
    h = net.encode_bottom(x)
    top = nearest_code_grid(net.encode_top(h), net.quantize_top.codebook)
    other_top = (top + 1) % net.cfg.top_codes  # a different top code everywhere
    def bottom_of(t):
        return nearest_code_grid(net.bottom_input(h, net.quantize_top.lookup(t)), net.quantize_bottom.codebook)

    assert torch.equal(bottom_of(top), net.encode(x)[1])
    assert not torch.equal(bottom_of(other_top), bottom_of(top))  # the same image, another top: other bottom codes


def test_gradient_reaches_the_top_encoder_through_both_levels():
    net = model(3).train()
    net.quantize_top.ema = net.quantize_bottom.ema = False  # freeze the codebooks' moving averages for the check
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    reconstruction = net(x)[2]["reconstruction"].sum()
    grads = torch.autograd.grad(reconstruction, [*net.encode_top.parameters(), *net.encode_bottom.parameters()],
                                allow_unused=True)
    assert all(g is not None and g.abs().sum() > 0 for g in grads)  # straight through at both levels
    # control: with the top level's vector detached, the top encoder gets nothing from the reconstruction
    h = net.encode_bottom(x)
    z_top, *_ = net.quantize_top(net.encode_top(h))
    z_bottom, *_ = net.quantize_bottom(net.bottom_input(h, z_top.detach()))
    detached = F.binary_cross_entropy_with_logits(net.decode_vectors(z_top.detach(), z_bottom), x, reduction="sum")
    grads = torch.autograd.grad(detached, list(net.encode_top.parameters()), allow_unused=True)
    assert all(g is None for g in grads)
