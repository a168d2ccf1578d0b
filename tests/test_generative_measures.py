"""The measures every generative paper scores its samples with (milestones.core.generative): the Frechet
distance against a written-out reference (scipy's matrix square root), the energy distance, mode counts
on constructed data, the judge's held-out accuracy, and the order floor < ceiling of FD-digits."""

import numpy as np
import pytest
import scipy.linalg
import torch

from milestones.core import generative
from milestones.core.data import gaussian_ring, load_digits, ring_centers


def scipy_frechet(x: np.ndarray, y: np.ndarray) -> float:
    """FID's formula as usually written: scipy's sqrtm of the product of the covariances."""
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    root = scipy.linalg.sqrtm(s_x @ s_y).real
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(s_x + s_y - 2 * root))


@pytest.mark.parametrize("dim", [1, 3, 16])
def test_frechet_distance_equals_the_scipy_reference(dim):
    g = torch.Generator().manual_seed(dim)
    x = torch.randn(300, dim, generator=g, dtype=torch.float64) @ torch.randn(dim, dim, generator=g,
                                                                                dtype=torch.float64)
    y = 0.5 + 2 * torch.randn(200, dim, generator=g, dtype=torch.float64)
    assert generative.frechet_distance(x, y) == pytest.approx(scipy_frechet(x.numpy(), y.numpy()), rel=1e-8)


def test_frechet_distance_of_two_known_gaussians():
    # N(0, I) against N(m, 4 I) in D dims: |m|^2 + D (1 + 4 - 2 * 2) = |m|^2 + D, with exact moments
    d = 4
    base = torch.randn(5000, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    base = (base - base.mean(0)) @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(base.T))).T  # exactly white
    m = torch.tensor([1.0, -2.0, 0.0, 0.5], dtype=torch.float64)
    assert generative.frechet_distance(base, m + 2 * base) == pytest.approx(m.square().sum().item() + d, rel=1e-9)


def test_frechet_distance_is_zero_for_identical_sets():
    x = torch.randn(100, 8, generator=torch.Generator().manual_seed(1))
    assert generative.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)


def test_energy_distance_of_a_set_to_itself_is_zero_and_grows_with_shift():
    x = torch.randn(400, 2, generator=torch.Generator().manual_seed(0))
    assert generative.energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    distances = [generative.energy_distance(x + torch.tensor([s, 0.0]), x) for s in (0.25, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(distances, distances[1:])), distances
    assert distances[0] > 0


def test_modes_covered_counts_constructed_data():
    centers = ring_centers(8, 1.0)
    on_three = torch.cat([centers[[0, 0, 3, 5]], centers[5:6] + 0.01])  # 2 at mode 0, 1 at mode 3, 2 at mode 5
    far = torch.zeros(10, 2)  # the circle's center: far from every mode
    samples = torch.cat([on_three, far])
    assert generative.modes_covered(samples, centers, radius=0.2) == 3
    assert generative.modes_covered(samples, centers, radius=0.2, min_count=2) == 2
    assert generative.near_mode_fraction(samples, centers, radius=0.2) == pytest.approx(5 / 15)
    points, _ = gaussian_ring(2000, seed=0)
    assert generative.modes_covered(points, centers, radius=0.2, min_count=20) == 8


def test_energy_scores_order_real_model_and_noise():
    points, _ = gaussian_ring(1000, seed=0)
    collapsed = ring_centers(8)[0] + 0.05 * torch.randn(500, 2, generator=torch.Generator().manual_seed(1))
    fair, _ = gaussian_ring(500, seed=2)
    good, bad = generative.energy_scores(fair, points), generative.energy_scores(collapsed, points)
    assert good.floor < good.ceiling < bad.value
    assert good.value < 3 * good.floor + 0.01 < good.ceiling


def test_the_judge_reads_held_out_digits():
    split = load_digits()
    assert generative.judge_held_out_accuracy() >= 0.95
    assert generative.judge_accuracy(split.x_test, split.y_test) == pytest.approx(generative.judge_held_out_accuracy())
    assert generative.class_coverage(split.x_test) == 10
    assert generative.class_coverage(split.x_test[split.y_test == 7]) == 1


def test_fd_digits_floor_is_far_below_the_ceiling_and_real_data_sits_at_the_floor():
    split = load_digits()
    real = generative.fd_digits(split.x_train)  # training digits: real, but not the held-out ones
    assert real.floor < 0.1 * real.ceiling
    assert real.value < 2 * real.floor
    sevens = generative.fd_digits(split.x_train[split.y_train == 7].repeat(3, 1, 1, 1))  # one class only
    assert sevens.value > 10 * real.floor
    with pytest.raises(ValueError, match="at least"):
        generative.fd_digits(split.x_train[:10])


def test_sample_grid_and_scatter_write_pngs(tmp_path):
    split = load_digits()
    path = generative.sample_grid(tmp_path / "grid.png", split.x_test[:20], [str(int(y)) for y in split.y_test[:20]])
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="captions"):
        generative.sample_grid(tmp_path / "bad.png", split.x_test[:3], ["1"])
    points, _ = gaussian_ring(100)
    path = generative.scatter(tmp_path / "points.png", {"data": points}, "ring", centers=ring_centers())
    assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("paper", ["vae", "vqvae", "ddpm", "gan", "improved_ddpm"])
def test_generate_writes_a_grid_of_digits_from_an_image_run(paper, tmp_path, capsys):
    import importlib

    from milestones import cli

    generate = importlib.import_module(f"milestones.generative.{paper}.generate")
    out = tmp_path / "run"
    importlib.import_module(f"milestones.generative.{paper}.experiment").run("smoke", out, quiet=True)
    assert cli.main(["generate", str(out), "--count", "12", "--seed", "1"]) == 0
    assert (out / "generated.png").stat().st_size > 0 and str(out / "generated.png") in capsys.readouterr().out
    assert cli.main(["generate", str(out), "--count", "5", "--out", str(tmp_path / "five.png")]) == 0
    assert (tmp_path / "five.png").is_file()

    def draw(seed):
        return generate.sample_images(out, 6, torch.Generator().manual_seed(seed), torch.device("cpu"))
    first = draw(3)
    assert first.shape == (6, 1, 8, 8) and 0 <= first.min() and first.max() <= 1
    assert torch.equal(first, draw(3)) and not torch.equal(first, draw(4))  # the seed decides the samples
    for argv, message in [(["--count", "0"], "at least 1"), (["--prompt", "a"], "text models")]:
        assert cli.main(["generate", str(out), *argv]) == 2 and message in capsys.readouterr().err
    (out / "model.json").unlink()
    assert cli.main(["generate", str(out)]) == 2 and f"milestones run {paper}" in capsys.readouterr().err
