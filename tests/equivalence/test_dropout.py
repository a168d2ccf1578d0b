"""The from-scratch inverted dropout equals F.dropout: the same mask gives the same output and
gradient, the same seed draws the same mask, and the statistics (kept fraction, preserved mean) agree."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from milestones.optimization.dropout.model import Dropout, DropoutMLP, dropout, thinned_predictions


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_same_seed_same_output_and_gradient_as_f_dropout(p):
    x = torch.randn(50, 40)
    ours_in, theirs_in = x.clone().requires_grad_(), x.clone().requires_grad_()
    upstream = torch.randn_like(x)
    torch.manual_seed(7)
    ours = dropout(ours_in, p)
    torch.manual_seed(7)
    theirs = F.dropout(theirs_in, p, training=True)
    (ours * upstream).sum().backward()
    (theirs * upstream).sum().backward()
    assert_close(ours, theirs, rtol=0, atol=0)
    assert_close(ours_in.grad, theirs_in.grad, rtol=0, atol=0)


def test_a_given_mask_gives_f_dropouts_output_and_gradient():
    """Recover the mask F.dropout drew (from an input with no zeros) and replay it through ours."""
    torch.manual_seed(8)
    x = torch.rand(30, 20, dtype=torch.float64) + 0.5  # strictly positive: a zero output means dropped
    theirs_in = x.clone().requires_grad_()
    theirs = F.dropout(theirs_in, 0.3, training=True)
    mask = (theirs != 0).to(x.dtype)
    ours_in = x.clone().requires_grad_()
    ours = dropout(ours_in, 0.3, mask=mask)
    weights = torch.randn_like(x)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    assert_close(ours, theirs, rtol=1e-15, atol=0)
    assert_close(ours_in.grad, theirs_in.grad, rtol=1e-15, atol=0)
    assert_close(ours_in.grad, weights * mask / 0.7, rtol=1e-15, atol=0)  # d out / d x = r / q


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_statistics_kept_fraction_and_preserved_mean(p):
    """Over a million units: the kept fraction is q = 1 - p and the mean of the output equals the
    mean of the input (inverted scaling), for ours and F.dropout alike. Tolerances are 6 standard
    deviations of the sampling noise, so neither passes or fails by luck."""
    n = 1_000_000
    x = torch.full((n,), 2.0)
    torch.manual_seed(9)
    ours = dropout(x, p)
    torch.manual_seed(10)
    theirs = F.dropout(x, p, training=True)
    q = 1 - p
    kept_sd = (p * q / n) ** 0.5
    mean_sd = 2.0 * (p / q / n) ** 0.5
    for out in (ours, theirs):
        assert abs((out != 0).double().mean().item() - q) < 6 * kept_sd
        assert abs(out.double().mean().item() - 2.0) < 6 * mean_sd
        assert set(out.unique().tolist()) == {0.0, 2.0 / q}


def test_identity_at_test_time_and_without_dropping():
    x = torch.randn(4, 5)
    layer = Dropout(0.5).eval()
    assert torch.equal(layer(x), x)
    assert torch.equal(dropout(x, 0.0), x)
    with pytest.raises(ValueError):
        dropout(x, 1.0)


def test_thinned_predictions_sample_different_masks_and_restore_the_mode():
    torch.manual_seed(11)
    net = DropoutMLP(64, 32, 2, 10, 0.2, 0.5).eval()
    x = torch.rand(6, 1, 8, 8)
    sampled = thinned_predictions(net, x, 4)
    assert sampled.shape == (4, 6, 10)
    assert not torch.allclose(sampled[0], sampled[1])  # two different thinned networks
    assert_close(sampled.sum(-1), torch.ones(4, 6))
    assert not net.training
