"""Interop with Hugging Face `transformers`, written once for every model's `from_hf` / `to_hf`.

`transformers` is a test extra, not a dependency: it is imported here, only when a conversion asks
for it, and its absence is a one-line error that names the extra. Nothing is ever downloaded: a
model comes from an instance or from a folder written by `save_pretrained`.
"""

from __future__ import annotations

from pathlib import Path

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
