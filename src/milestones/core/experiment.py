"""The per-paper experiment contract, written once.

A paper's `experiment.py` declares its claim, a config dataclass and the config of each scale, and
writes one function `run(cfg, ctx) -> Result` holding the experiment's body. The `@experiment`
decorator turns that body into the public entry point

    run(scale="quick", out=None, *, seed=0, device="auto", overrides=None, resume=False, quiet=False)

which builds the config (validating `--set key=value` overrides against the dataclass), opens a
`Run` in the output folder, times the body, fills in the result and writes `result.json`.

The thresholds that decide a verdict are module constants of the experiment, named in its claim, never
`Config` fields: `--set` changes the experiment, not the bar. A run whose config differs from its
scale's reference config records the difference as `overrides`, and is shown as a custom run.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
import typing
from datetime import datetime
from pathlib import Path

from milestones.core import cache
from milestones.core.claims import Result
from milestones.core.errors import UserError
from milestones.core.run import Run

SCALES = ("smoke", "quick", "full")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _parse(key: str, text: str, kind):
    """Read `text` as a value of the field's type (int, float, bool, str, or a tuple of those)."""
    try:
        if kind is bool:
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        if typing.get_origin(kind) is tuple:
            inner = typing.get_args(kind)[0]
            return tuple(_parse(key, part, inner) for part in text.split(",") if part)
        if kind in (int, float, str):
            return kind(text)
    except ValueError:
        raise UserError(f"--set {key}={text}: expected {getattr(kind, '__name__', kind)}") from None
    raise TypeError(f"config field {key} has a type --set cannot parse: {kind}")


def configure(config_type: type, scales: dict, scale: str, overrides: dict[str, str] | None = None):
    """The config for `scale`, with `overrides` ({"key": "text value"}) applied and type-checked."""
    if scale not in scales:
        raise UserError(f"unknown scale {scale!r}; choose one of {', '.join(scales)}")
    types = typing.get_type_hints(config_type)
    changes = {}
    for key, text in (overrides or {}).items():
        if key not in types:
            raise UserError(f"unknown config key {key!r}; valid keys: {', '.join(types)}")
        changes[key] = _parse(key, text, types[key])
    return dataclasses.replace(scales[scale], **changes)


def default_out(paper: str, scale: str, root: Path = Path("runs")) -> Path:
    """A fresh folder under runs/, never an earlier run's."""
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:  # each process would pick its own timestamp
        raise UserError("under torchrun, pass --out DIR so that every process writes to the same folder")
    base = root / f"{datetime.now():%Y%m%d-%H%M%S}-{paper}-{scale}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def experiment(claim: str, config: type, scales: dict, expected_failures: tuple[str, ...] = ()):
    """Decorate a paper's `run(cfg, ctx) -> Result` body; see the module docstring.

    `expected_failures` names the checks (by `Check.name`) that honestly fail at `quick` scale (the
    paper's notes say why). The verdict is still computed from the checks on every run; the claims
    test asserts that exactly these checks fail and every other one holds.
    """
    if set(scales) != set(SCALES):
        raise ValueError(f"an experiment needs exactly the scales {SCALES}, got {sorted(scales)}")

    def decorate(body):
        paper = body.__module__.split(".")[-2]

        @functools.wraps(body)
        def run(scale: str = "quick", out: str | Path | None = None, *, seed: int = 0, device: str = "auto",
                overrides: dict[str, str] | None = None, resume: bool = False, quiet: bool = False) -> Result:
            cfg = configure(config, scales, scale, overrides)
            ctx = Run(out or default_out(paper, scale), seed=seed, device=device, resume=resume, quiet=quiet)
            start = time.perf_counter()
            try:
                with cache.recording() as used:
                    result = body(cfg, ctx)
            finally:
                ctx.close()
            result.cache = used
            result.paper, result.claim, result.scale, result.seed = paper, claim, scale, seed
            result.config = dataclasses.asdict(cfg)
            reference = dataclasses.asdict(scales[scale])
            result.overrides = {key: value for key, value in result.config.items() if value != reference[key]}
            unknown = set(expected_failures) - {c.name for c in result.checks}
            if unknown:
                raise ValueError(f"{paper}: expected_failures names no check of the result: {sorted(unknown)}")
            result.artifacts, result.out = ctx.artifacts, str(ctx.out)
            result.wall_s = time.perf_counter() - start
            if ctx.is_main:
                result.save(ctx.out / "result.json")
            return result

        run.paper, run.claim, run.config_type, run.scales = paper, claim, config, scales
        run.expected_failures = tuple(expected_failures)
        return run

    return decorate
