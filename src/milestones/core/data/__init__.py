"""Data that runs offline: bundled (sklearn digits, Shakespeare) and procedural (2-D toys, shapes, sequence tasks)."""

from milestones.core.data.digits import Split, load_digits, random_shifts, shift
from milestones.core.data.shakespeare import CharTokenizer, shakespeare_text
from milestones.core.data.shapes import Shapes, make_shapes
from milestones.core.data.toy2d import gaussian_grid, rings, spirals, two_moons

__all__ = ["CharTokenizer", "Shapes", "Split", "gaussian_grid", "load_digits", "make_shapes", "random_shifts", "rings",
           "shakespeare_text", "shift", "spirals", "two_moons"]

from milestones.core.data.sequences import (  # noqa: E402
           ADDING_BASELINE_MSE,
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

__all__ += ["ADDING_BASELINE_MSE", "IGNORE", "REBER_SYMBOLS", "ReberStream", "adding_problem",
            "continual_embedded_reber", "copy_task", "delayed_recall", "embedded_reber", "embedded_reber_strings",
            "reverse_task", "windowed_parity"]

from milestones.core.data.cells import Cells, make_cells  # noqa: E402  (appended: segmentation data)

__all__ += ["Cells", "make_cells"]

from milestones.core.data.translation import toy_translation, translation_alignment, translation_dictionary  # noqa: E402  (appended)

__all__ += ["toy_translation", "translation_alignment", "translation_dictionary"]

from milestones.core.data.largest_shape import make_largest_shape  # noqa: E402  (appended: AlexNet's Figure 1 task)

__all__ += ["make_largest_shape"]

from milestones.core.data.analogies import AnalogyCorpus, make_analogy_corpus  # noqa: E402  (appended: word2vec)

__all__ += ["AnalogyCorpus", "make_analogy_corpus"]
