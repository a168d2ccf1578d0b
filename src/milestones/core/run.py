"""One `Run` gives every experiment what it needs besides the paper's own ideas.

- device choice (cuda, mps, cpu) and seeding;
- data parallelism under `torchrun` (gloo on CPU, nccl on GPU): `wrap` a model, `shard` a batch;
- bf16 autocast on GPUs that support it, and on a CPU with AMX tiles where a run asks for it (never
  fp16, and never bf16 on a CPU without AMX, where it is slow);
- `fit`: a training loop with a progress bar, a JSONL metrics log, atomic checkpoints, exact resume
  and a clear stop on a NaN or infinite loss.

Experiments train through `milestones.core.training.train`, the one loop built on `fit`; everything here
is written once.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from milestones.core import checkpoint
from milestones.core.errors import Diverged, UserError


def pick_device(name: str = "auto") -> torch.device:
    """`auto` takes cuda, then mps, then cpu. Asking for a device that is absent is a `UserError`."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(device.type, False):
        raise UserError(f"device {name!r} is not available on this machine; use --device cpu or auto")
    return device


def keep_freed_memory() -> None:
    """Let glibc's malloc keep the memory a step frees for the next step, instead of handing it back.

    By default every allocation over 32 MB (a batch's logits, B x T x V floats, say) gets fresh pages from
    the kernel (mmap), which are zeroed on first touch and returned when freed: every step pays the page
    faults again. Serving them from the heap and not trimming it makes the base model's training step 1.4x
    faster on two cores (246 -> 174 ms; gpt2's notes). The arithmetic is unchanged. It holds for the rest
    of the process, so it is asked for where it was measured (the base model's build, its benchmark), not
    by every run (with it in every `Run`, a torchrun process of the test suite once aborted at shutdown,
    which five reruns did not repeat; the risk was not worth it where nothing was measured).
    A no-op without glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_max = -1, -4  # mallopt's parameter numbers, from glibc's malloc.h
    libc.mallopt(m_mmap_max, 0)  # no mmap for large blocks: the heap serves them
    libc.mallopt(m_trim_threshold, 2**31 - 1)  # and keeps up to 2 GB free at its top, ready for reuse


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (Intel Sapphire Rapids and later), which multiply bf16 matrices fast."""
    return torch.cpu._is_amx_tile_supported()


def load_trained(run_dir: Path, build: Callable[[dict], torch.nn.Module], device: torch.device,
                 paper: str, spec: str = "model") -> tuple[torch.nn.Module, dict]:
    """The model a run saved with `Run.save_trained` under `spec`, rebuilt by `build(config)`, its weights
    loaded, in eval mode on `device`; and the whole spec. `paper` names the run's paper in errors."""
    try:
        saved = json.loads((run_dir / f"{spec}.json").read_text())
    except (OSError, ValueError):
        raise UserError(f"{run_dir} holds no finished run with a saved model ({spec}.json is missing or damaged); "
                        f"pass the folder `milestones run {paper}` wrote") from None
    path = run_dir / saved["checkpoint"]
    if not path.is_file():
        raise UserError(f"{path} is missing: the run did not finish; continue it with --resume --out {run_dir}")
    model = build(saved["model"])
    model.load_state_dict(checkpoint.load(path)["state"]["model"])
    return model.to(device).eval(), saved


def make_output_folder(path: Path) -> None:
    """Create `path` and its parents, or end with a one-line error when it cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the output folder {path} ({e.strerror}); choose another --out") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"the output folder {path} is not writable; choose another --out")


def _number(value) -> float:
    return value.item() if isinstance(value, torch.Tensor) else float(value)


@dataclass
class FitLog:
    """The logged history of one `fit`: a list of {"step": n, metric: value, ...}."""

    name: str
    history: list[dict] = field(default_factory=list)
    diverged_at: int | None = None  # the step at which the loss became NaN or infinite, if it did
    stopped_at: int | None = None  # the step at which `stop_when` ended the fit, if it did

    def series(self, key: str) -> tuple[list[int], list[float]]:
        points = [(h["step"], h[key]) for h in self.history if key in h]
        return [s for s, _ in points], [v for _, v in points]

    def last(self, key: str) -> float:
        return self.series(key)[1][-1]


class Run:
    def __init__(self, out: str | Path, seed: int = 0, device: str = "auto", resume: bool = False,
                 quiet: bool = False, amp: bool = True, checkpoint_every_s: float = 30.0, cpu_bf16: bool = False):
        self.out = Path(out)
        self.world_size = int(os.environ.get("WORLD_SIZE", 1))
        self.rank = int(os.environ.get("RANK", 0))
        self.device = pick_device(device)
        if self.world_size > 1 and not dist.is_initialized():
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if not resume and self.out.exists() and any(self.out.iterdir()):
            raise UserError(f"{self.out} already holds a run; pass --resume to continue it or choose another --out")
        if self.world_size > 1:
            dist.barrier()  # every process has checked the folder before the first one writes to it
        self.seed = seed
        self.resume = resume
        self.quiet = quiet
        self.checkpoint_every_s = checkpoint_every_s
        # On a CPU only by request (`cpu_bf16`): it changes a run's numbers, and only AMX's bf16 matrix
        # products are fast (2.5-3x fp32 for the base model's step on a Sapphire Rapids core; gpt2's notes).
        self.use_bf16 = amp and (self.device.type == "cuda" and torch.cuda.is_bf16_supported()
                                 or cpu_bf16 and self.device.type == "cpu" and cpu_has_amx())
        self.artifacts: list[str] = []
        if self.is_main:
            make_output_folder(self.out)
        self.reseed(0)

    # --- setup -------------------------------------------------------------------------------

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def reseed(self, offset: int = 0) -> None:
        """Seed every generator from the run's seed; `offset` gives independent repeats (seeds 0..k)."""
        s = self.seed * 1_000_003 + offset
        random.seed(s)
        np.random.seed(s % 2**32)
        torch.manual_seed(s)

    def autocast(self):
        """bf16 autocast where the hardware runs it fast; a no-op elsewhere."""
        if self.use_bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move to the device; under torchrun, wrap in DistributedDataParallel (gradients averaged)."""
        model = model.to(self.device)
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return model

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's equal slice of a global batch (the whole batch on one process)."""
        if self.world_size == 1:
            return batch
        if len(batch) % self.world_size:
            raise UserError(f"the batch size {len(batch)} must divide by the {self.world_size} processes")
        per = len(batch) // self.world_size
        return batch[self.rank * per:(self.rank + 1) * per]

    def mean_over_processes(self, value: float) -> float:
        if self.world_size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t)
        return t.item() / self.world_size

    # --- outputs -----------------------------------------------------------------------------

    def artifact(self, name: str) -> Path:
        """The path for an output file in the run folder; it is listed in the result."""
        self.artifacts.append(name)
        path = self.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def save_trained(self, config, fit_name: str, spec: str = "model", **extra) -> None:
        """Write `{spec}.json`, what `milestones generate` reads to rebuild a trained model: its config (a
        dataclass or a dict of constructor arguments), the checkpoint the fit `fit_name` left its weights
        in, and any `extra` entries (a tokenizer file, say). A run with two models (an autoencoder and its
        prior) writes two specs."""
        if self.is_main:
            config = asdict(config) if is_dataclass(config) else config
            self.artifact(f"{spec}.json").write_text(json.dumps(
                {"model": config, "checkpoint": f"checkpoints/{fit_name}.safetensors"} | extra, indent=2))

    def log(self, **record) -> None:
        if self.is_main:
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def close(self) -> None:
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()

    # --- training ----------------------------------------------------------------------------

    def fit(self, name: str, steps: int, step: Callable[[int], dict], state: dict,
            log_every: int | None = None, stop_on_nonfinite: bool = True,
            evaluate: Callable[[], dict] | None = None, stop_when: Callable[[dict], bool] | None = None) -> FitLog:
        """Call `step(i)` for i in [0, steps), logging, checkpointing and resuming.

        `step(i)` does one training step and returns its metrics (tensors or floats); "loss" among
        them is watched for NaN/inf. `state` names every object with a state_dict that the steps
        change (models, optimizers, schedulers), so a checkpoint can restore them. Metrics are
        read (and so the GPU synchronised) only every `log_every` steps. With `stop_on_nonfinite`
        a non-finite loss raises `Diverged`; without it the fit ends early and the log says when
        (for experiments where divergence is the result, e.g. a learning rate too high).
        `evaluate()`, if given, runs at every log point and its metrics join the record (held-out
        accuracy, say); it must not change the training state or draw from the global RNG.
        `stop_when(record)`, if given, sees each logged record and ends the fit early by returning
        True (a target reached); the log's `stopped_at` says when, and a resumed fit that had
        stopped stays stopped.
        """
        path = self.out / "checkpoints" / f"{name}.safetensors"
        log = FitLog(name)
        start = 0
        if self.resume and path.exists():
            saved = checkpoint.load(path)
            for key, obj in state.items():
                obj.load_state_dict(saved["state"][key])
            self._set_rng(saved["rng"])
            start, log.history = saved["step"], saved["history"]
            log.diverged_at, log.stopped_at = saved["diverged_at"], saved.get("stopped_at")
            if start == steps or log.diverged_at is not None or log.stopped_at is not None:
                return log
            self.log(fit=name, resumed_from=start)
        log_every = log_every or max(1, steps // 100)
        last_save = time.monotonic()
        bar = tqdm(total=steps, initial=start, desc=name, disable=self.quiet or not self.is_main,
                   leave=False, dynamic_ncols=True)
        for i in range(start, steps):
            metrics = step(i)
            bar.update()
            if (i + 1) % log_every and i + 1 < steps:
                continue
            if evaluate is not None:
                metrics |= evaluate()
            record = {"step": i + 1} | {k: self.mean_over_processes(_number(v)) for k, v in metrics.items()}
            if not math.isfinite(record.get("loss", 0.0)):
                if stop_on_nonfinite:
                    bar.close()
                    kept = (f"the last good checkpoint ({path}) is kept" if path.exists()
                            else "no checkpoint was saved yet")
                    raise Diverged(f"{name}: the loss became {record['loss']} by step {i + 1}; {kept}. "
                                   "Lower the learning rate (--set lr=...) and run again")
                log.diverged_at = i + 1
            elif stop_when is not None and stop_when(record):
                log.stopped_at = i + 1
            log.history.append(record)
            self.log(fit=name, **record)
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "step"}, refresh=False)
            ended = log.diverged_at or log.stopped_at
            if ended or i + 1 == steps or time.monotonic() - last_save >= self.checkpoint_every_s:
                self._save(path, i + 1, state, log)
                last_save = time.monotonic()
            if ended:
                break
        bar.close()
        return log

    def _save(self, path: Path, step: int, state: dict, log: FitLog) -> None:
        if self.is_main:
            checkpoint.save(path, {"step": step, "history": log.history, "diverged_at": log.diverged_at,
                                   "stopped_at": log.stopped_at,
                                   "state": {k: obj.state_dict() for k, obj in state.items()},
                                   "rng": self._get_rng()})

    def _get_rng(self) -> dict:
        state = {"torch": torch.get_rng_state(), "python": random.getstate(),
                 "numpy": [v.tolist() if isinstance(v, np.ndarray) else v for v in np.random.get_state()]}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _set_rng(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        random.setstate(state["python"])
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
        if "cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], self.device)
