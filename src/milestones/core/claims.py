"""What an experiment returns: numbers, the comparisons that decide its verdict, and its artifacts.

A claim is decided by one or more `Check`s. Each check compares a measured value against a
reference (a threshold, or another measured number) and knows its margin, so the verdict is
computed from numbers and never typed by hand: the claim holds when every check holds, partly
reproduces when some do, and does not hold when none does. A check that an experiment declares as
expected to fail at `quick` scale (see `milestones.core.experiment`) carries a short `name`.

A *control* is a check that holds by construction when the experiment is set up right (a net with
no hidden layer cannot solve XOR; two models were built with the parameter ratio intended): it
carries no evidence for the paper's idea, so it is shown apart and does not count among the
checks of a partial verdict, but a failing control means the experiment itself is broken, and the
claim then does not hold.
"""

from __future__ import annotations

import json
import math
import operator
from dataclasses import asdict, dataclass, field
from pathlib import Path

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclass(frozen=True)
class Check:
    """`value op reference`, e.g. "accuracy with a hidden layer (1.0) >= target (1.0)"."""

    what: str
    value: float
    op: str
    reference: float
    reference_what: str
    name: str | None = None  # a short identifier; needed for a check declared as expected to fail
    control: bool = False  # true by construction: a sanity check of the set-up, not evidence

    def __post_init__(self):
        if self.op not in _OPS:
            raise ValueError(f"op must be one of {sorted(_OPS)}, got {self.op!r}")

    @property
    def holds(self) -> bool:
        return math.isfinite(self.value) and _OPS[self.op](self.value, self.reference)

    @property
    def margin(self) -> float:
        """How far the value is on the right side of the reference (negative: the wrong side)."""
        return self.value - self.reference if self.op in (">", ">=") else self.reference - self.value

    def __str__(self) -> str:
        mark = ("ok" if self.holds else "FAILS") + (", control" if self.control else "")
        label = f"{self.name}: " if self.name else ""
        return (f"[{mark}] {label}{self.what} = {self.value:.4g} {self.op} {self.reference_what} = "
                f"{self.reference:.4g} (margin {self.margin:+.4g})")


def check(what: str, value: float, op: str, reference: float, reference_what: str = "target",
          name: str | None = None, control: bool = False) -> Check:
    return Check(what, float(value), op, float(reference), reference_what, name, control)


@dataclass
class Result:
    """Everything a run produced. `holds` is derived from the checks.

    An experiment body returns `Result(checks=..., metrics=...)`; the `@experiment` wrapper fills
    in the rest (paper, claim, scale, config, seed, artifacts, out folder, wall time).
    """

    checks: list[Check]
    metrics: dict = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)  # paths relative to `out`
    paper: str = ""
    claim: str = ""
    scale: str = ""
    config: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)  # config fields changed from the scale's reference config
    seed: int = 0
    cache: list[str] = field(default_factory=list)  # the entries of milestones.core.cache the run used
    out: str = ""
    wall_s: float = 0.0

    @property
    def holds(self) -> bool:
        return bool(self.checks) and all(c.holds for c in self.checks)

    @property
    def failing(self) -> list[Check]:
        return [c for c in self.checks if not c.holds]

    @property
    def verdict(self) -> str:
        """"holds", "does not hold" (no evidence check holds, or a control fails), or "partly reproduces
        (K of N checks)", counting the checks that carry evidence, not the controls."""
        if self.holds:
            return "holds"
        evidence = [c for c in self.checks if not c.control]
        held = sum(c.holds for c in evidence)
        if held == 0 or any(c.control for c in self.failing):
            return "does not hold"
        return f"partly reproduces ({held} of {len(evidence)} checks)"

    def to_dict(self) -> dict:
        return {
            "paper": self.paper,
            "claim": self.claim,
            "scale": self.scale,
            "holds": self.holds,
            "verdict": self.verdict,
            "checks": [asdict(c) | {"holds": c.holds, "margin": c.margin} for c in self.checks],
            "metrics": self.metrics,
            "artifacts": self.artifacts,
            "config": self.config,
            "overrides": self.overrides,
            "seed": self.seed,
            "cache": self.cache,
            "out": self.out,
            "wall_s": round(self.wall_s, 3),
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, default=float) + "\n")

    def report(self) -> str:
        custom = f" (custom config, not the reference run: {self.overrides})" if self.overrides else ""
        lines = [f"{self.paper} ({self.scale}): the claim {self.verdict.upper()}{custom}", f"  claim: {self.claim}"]
        lines += [f"  {c}" for c in self.checks if not c.control]
        controls = [c for c in self.checks if c.control]
        if controls:
            lines.append("  controls (true by construction when the set-up is right):")
            lines += [f"    {c}" for c in controls]
        if self.failing:
            lines.append("  failing: " + ", ".join(c.name or c.what for c in self.failing))
        lines.append(f"  wall time {self.wall_s:.1f} s; artifacts in {self.out}/")
        return "\n".join(lines)
