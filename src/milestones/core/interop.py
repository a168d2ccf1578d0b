"""Interop with Hugging Face `transformers`, written once for every model's `from_hf` / `to_hf`.

Each model keeps its own explicit name map (ours -> Hugging Face's), since users load real
checkpoints with it; `copy_weights` walks a map in either direction.

`transformers` is a test extra, not a dependency: it is imported here, only when a conversion asks
for it, and its absence is a one-line error that names the extra. Nothing is ever downloaded: a
model comes from an instance or from a folder written by `save_pretrained`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from milestones.core.errors import UserError


def transformers():
    """The `transformers` module, or a UserError saying how to install it."""
    try:
        import transformers
    except ImportError:
        raise UserError("Hugging Face interop needs transformers: pip install 'milestones[test]'") from None
    return transformers


def hf_model(class_name: str, model_or_path):
    """`model_or_path` itself, or the `transformers.<class_name>` saved in that folder (local files only)."""
    if isinstance(model_or_path, (str, Path)):
        return getattr(transformers(), class_name).from_pretrained(model_or_path, local_files_only=True)
    return model_or_path


def copy_weights(ours: nn.Module, hf: nn.Module, names: dict[str, str], into_ours: bool,
                 transposed: Callable[[str], bool] = lambda hf_name: False) -> None:
    """Copy every parameter paired in `names` (our name -> Hugging Face's) from one model into the other:
    into ours when `into_ours`, else into Hugging Face's. `transposed(hf_name)` marks the weights that
    Hugging Face stores as the transpose of ours (GPT-2's Conv1D)."""
    with torch.no_grad():
        for our_name, hf_name in names.items():
            mine, theirs = ours.get_parameter(our_name), hf.get_parameter(hf_name)
            source, target = (theirs, mine) if into_ours else (mine, theirs)
            target.copy_(source.t() if transposed(hf_name) else source)
