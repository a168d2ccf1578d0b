"""Checkpoints: one safetensors file per checkpoint, written atomically, never unpickled.

A checkpoint is any tree of dicts, lists, numbers, strings and tensors (model and optimizer state
dicts, RNG states, step counters, metric histories). The tensors go into the safetensors body; the
rest of the tree goes, as JSON, into the file's metadata with a placeholder where each tensor was.
Loading therefore runs no code from the file: a safetensors header and JSON are all it parses.

Atomicity: the file is written next to its destination, flushed to disk, then `os.replace`d over
it. A process killed at any instant leaves either the previous checkpoint or the new one, whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from milestones.core.errors import UserError

_TENSOR = "__tensor__"  # {"__tensor__": key} stands where a tensor was
_ITEMS = "__items__"  # {"__items__": [[key, value], ...]} keeps non-string dict keys (optimizer state uses ints)
_TUPLE = "__tuple__"


def _flatten(tree, tensors: dict, path: str):
    if isinstance(tree, torch.Tensor):
        key = f"t{len(tensors)}:{path}"
        tensors[key] = tree.detach().to("cpu").contiguous().clone()  # clone: safetensors refuses shared storage
        return {_TENSOR: key}
    if isinstance(tree, dict):
        if all(isinstance(k, str) for k in tree):
            return {k: _flatten(v, tensors, f"{path}.{k}") for k, v in tree.items()}
        return {_ITEMS: [[k, _flatten(v, tensors, f"{path}.{k}")] for k, v in tree.items()]}
    if isinstance(tree, tuple):
        return {_TUPLE: [_flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(tree)]}
    if isinstance(tree, list):
        return [_flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(tree)]
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise TypeError(f"cannot checkpoint a {type(tree).__name__} at {path or 'the root'}")


def _unflatten(tree, tensors: dict):
    if isinstance(tree, dict):
        if _TENSOR in tree:
            return tensors[tree[_TENSOR]]
        if _ITEMS in tree:
            return {k: _unflatten(v, tensors) for k, v in tree[_ITEMS]}
        if _TUPLE in tree:
            return tuple(_unflatten(v, tensors) for v in tree[_TUPLE])
        return {k: _unflatten(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unflatten(v, tensors) for v in tree]
    return tree


def save(path: str | Path, tree: dict) -> None:
    """Write `tree` to `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(tree, tensors, "")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(tensors, tmp, metadata={"tree": json.dumps(skeleton)})
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: str | Path) -> dict:
    """Read a checkpoint written by `save`. A damaged file is a `UserError`, not a traceback."""
    path = Path(path)
    try:
        with safe_open(path, framework="pt") as f:
            tensors = {key: f.get_tensor(key) for key in f.keys()}
            skeleton = json.loads(f.metadata()["tree"])
        return _unflatten(skeleton, tensors)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"checkpoint {path} is corrupt or unreadable ({e}); delete it to start over") from None
