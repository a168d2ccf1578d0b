"""U-Net: the paper's Figure 1 sizes (572 x 572 in, 388 x 388 out), and our modules equal a
functional reference written with torch.nn.functional, forward and backward, valid and padded."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from milestones.core.data import make_cells
from milestones.foundations.unet.model import UNet, center_crop, he_initialize


def test_paper_configuration_maps_572_to_388_with_figure_1s_feature_sizes():
    model = UNet(in_channels=1, out_channels=2, padding=False).eval()
    assert sum(p.numel() for p in model.parameters()) == 31_030_658
    sides = []
    hooks = [block.register_forward_hook(lambda m, i, o: sides.append((o.shape[1], o.shape[-1])))
             for block in [*model.down, *(up.conv for up in model.up)]]
    with torch.no_grad():
        out = model(torch.randn(1, 1, 572, 572))
    for h in hooks:
        h.remove()
    assert out.shape == (1, 2, 388, 388)
    assert sides == [(64, 568), (128, 280), (256, 136), (512, 64), (1024, 28),  # contracting path
                     (512, 52), (256, 100), (128, 196), (64, 388)]  # expanding path


def reference_unet(params: dict, x: torch.Tensor, depth: int, pad: int, skip: bool) -> torch.Tensor:
    """The U written out with functional ops, reading the weights by name from the state dict."""
    def double_conv(prefix, h):
        h = F.relu(F.conv2d(h, params[f"{prefix}.0.weight"], params[f"{prefix}.0.bias"], padding=pad))
        return F.relu(F.conv2d(h, params[f"{prefix}.2.weight"], params[f"{prefix}.2.bias"], padding=pad))

    saved = []
    for level in range(depth + 1):
        x = double_conv(f"down.{level}", F.max_pool2d(x, 2) if level else x)
        saved.append(x)
    x = saved.pop()
    for level in range(depth):
        x = F.conv_transpose2d(x, params[f"up.{level}.up.weight"], params[f"up.{level}.up.bias"], stride=2)
        across = saved.pop()
        if skip:
            trim_h, trim_w = (across.shape[-2] - x.shape[-2]) // 2, (across.shape[-1] - x.shape[-1]) // 2
            x = torch.cat([across[..., trim_h:trim_h + x.shape[-2], trim_w:trim_w + x.shape[-1]], x], 1)
        x = double_conv(f"up.{level}.conv", x)
    return F.conv2d(x, params["head.weight"], params["head.bias"])


@pytest.mark.parametrize("padding, side, widths, skip", [
    (False, 92, (4, 8, 16), True),  # valid: 92 -> 88 -> 44 -> 40 -> 20 -> 16 -> 32 -> 28 -> 56 -> 52
    (True, 32, (4, 8, 16, 32), True),
    (True, 24, (3, 6), False),
])
def test_unet_matches_functional_reference(padding, side, widths, skip):
    torch.manual_seed(side)
    model = UNet(in_channels=2, out_channels=3, widths=widths, padding=padding, skip=skip).double()
    params = {k: v.detach().clone().requires_grad_() for k, v in model.state_dict().items()}
    x = torch.randn(2, 2, side, side, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    ours = model(x)
    theirs = reference_unet(params, x_ref, len(widths) - 1, 1 if padding else 0, skip)
    assert ours.shape == theirs.shape
    assert ours.shape[-1] == (side if padding else 52)
    assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    upstream = torch.randn_like(ours)
    ours.backward(upstream)
    theirs.backward(upstream)
    assert_close(x.grad, x_ref.grad, rtol=1e-10, atol=1e-12)
    for name, p in model.named_parameters():
        assert_close(p.grad, params[name].grad, rtol=1e-10, atol=1e-12)


def test_he_initialize_draws_the_papers_gaussian():
    """Section 3: weights ~ N(0, 2 / N), N = inputs per unit (k * k * C_in); biases zero."""
    torch.manual_seed(0)
    model = he_initialize(UNet(1, 2, (32, 64)))
    for conv in (model.down[1][2], model.up[0].conv[0]):  # 3 x 3 convolutions with 64 and 64 inputs
        fan_in = conv.weight[0].numel()
        assert conv.weight.mean().abs() < 0.01
        assert conv.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.03)
        assert not conv.bias.any()
    assert UNet(1, 2, (32, 64)).down[1][2].weight.std() < 0.7 * (2 / 576) ** 0.5  # PyTorch's default is narrower


def test_center_crop_takes_the_middle():
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    assert_close(center_crop(x, 2, 4), x[..., 2:4, 1:5])


def test_skips_carry_fine_detail_that_the_bottleneck_loses():
    """With skips, the output depends on an input pixel through a short path: its gradient at the
    output pixel above it is non-zero even when the deep path is cut (bottom features zeroed)."""
    torch.manual_seed(0)
    for skip, expect_signal in ((True, True), (False, False)):
        model = UNet(1, 1, widths=(4, 8, 16), skip=skip).double()
        model.down[-1].register_forward_hook(lambda m, i, o: o * 0)  # cut the bottom of the U
        x = torch.randn(1, 1, 16, 16, dtype=torch.float64, requires_grad=True)
        model(x)[0, 0, 8, 8].backward()
        assert (x.grad.abs().sum() > 0) == expect_signal


def test_cells_are_deterministic_and_masks_match_the_cells():
    a, b = make_cells(6, 48, seed=3), make_cells(6, 48, seed=3)
    assert_close(a.images, b.images, rtol=0, atol=0)
    assert torch.equal(a.masks, b.masks)
    assert not torch.equal(a.masks, make_cells(6, 48, seed=4).masks)
    assert a.images.shape == (6, 1, 48, 48) and a.masks.shape == (6, 48, 48)
    assert a.images.min() >= 0 and a.images.max() <= 1 and set(a.masks.unique().tolist()) == {0, 1}
    assert 0.05 < a.masks.float().mean() < 0.5  # cells cover some, not most, of each image
    inside, outside = a.images[:, 0][a.masks == 1], a.images[:, 0][a.masks == 0]
    assert inside.mean() > outside.mean()  # cells are brighter on average...
    assert (outside > inside.median()).float().mean() > 0.05  # ...but brightness alone does not separate them
