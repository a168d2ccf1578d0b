"""Data that runs offline: bundled (sklearn digits, Shakespeare) and procedural (2-D toys, shapes, cells,
sequence tasks, toy translation, an analogy corpus)."""

from milestones.core.data.analogies import AnalogyCorpus, make_analogy_corpus
from milestones.core.data.cells import Cells, make_cells
from milestones.core.data.digits import Split, load_digits, random_shifts, shift
from milestones.core.data.largest_shape import make_largest_shape
from milestones.core.data.sequences import (
    ADDING_BASELINE_MSE,
    ADDING_TOLERANCE,
    IGNORE,
    REBER_SYMBOLS,
    ReberStream,
    adding_problem,
    continual_embedded_reber,
    copy_task,
    delayed_recall,
    embedded_reber,
    embedded_reber_strings,
    reverse_task,
    windowed_parity,
)
from milestones.core.data.shakespeare import CharTokenizer, shakespeare_text, shakespeare_works
from milestones.core.data.shapes import Shapes, make_shapes
from milestones.core.data.toy2d import (
    gaussian_grid,
    gaussian_ring,
    ring_centers,
    rings,
    spirals,
    swiss_roll,
    two_moons,
)
from milestones.core.data.translation import (
    markov_translation,
    toy_translation,
    translation_alignment,
    translation_dictionary,
)

__all__ = ["ADDING_BASELINE_MSE", "ADDING_TOLERANCE", "IGNORE", "REBER_SYMBOLS",
           "AnalogyCorpus", "Cells", "CharTokenizer", "ReberStream", "Shapes", "Split", "adding_problem",
           "continual_embedded_reber", "copy_task", "delayed_recall",
           "embedded_reber", "embedded_reber_strings", "gaussian_grid", "gaussian_ring", "load_digits",
           "make_analogy_corpus", "make_cells", "make_largest_shape", "make_shapes", "markov_translation",
           "random_shifts", "reverse_task",
           "ring_centers", "rings",
           "shakespeare_text", "shakespeare_works", "shift", "spirals", "swiss_roll", "toy_translation",
           "translation_alignment", "translation_dictionary", "two_moons", "windowed_parity"]
