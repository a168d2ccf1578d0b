"""The machinery every paper shares, written once: runs, checkpoints, claims, plots and data."""

from milestones.core.claims import Check, Result, check
from milestones.core.errors import Diverged, UserError
from milestones.core.experiment import experiment
from milestones.core.run import Run

__all__ = ["Check", "Diverged", "Result", "Run", "UserError", "check", "experiment"]
