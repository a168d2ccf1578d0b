"""Data that runs offline: bundled (sklearn digits, Shakespeare) and procedural (2-D toys, shapes)."""

from milestones.core.data.digits import Split, load_digits, random_shifts, shift
from milestones.core.data.shakespeare import CharTokenizer, shakespeare_text
from milestones.core.data.shapes import Shapes, make_shapes
from milestones.core.data.toy2d import gaussian_grid, rings, spirals, two_moons

__all__ = ["CharTokenizer", "Shapes", "Split", "gaussian_grid", "load_digits", "make_shapes", "random_shifts", "rings",
           "shakespeare_text", "shift", "spirals", "two_moons"]
