"""milestones: the history of deep learning as working, tested PyTorch code.

Every landmark paper gets notes, a minimal implementation, an equivalence test against a trusted
reference, and its central claim reproduced in miniature. `milestones.catalog` is the table of
contents; `milestones.core` is the machinery every paper shares.
"""

__version__ = "0.1.0"
