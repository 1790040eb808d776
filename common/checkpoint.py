"""Safe, strict checkpoint loading shared by every model family and by the neural styles' network.

Official releases wrap their weights differently (a bare state dict, a resume file with a
``network`` key, DataParallel's ``module.`` prefix).  We unwrap those, load with
``torch.load(weights_only=True)`` (no pickle code execution), and refuse anything that does not
match the network exactly, saying which keys are missing, unexpected or mis-shaped.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

__all__ = ["CheckpointError", "read_state_dict", "check_state_dict", "load_strict", "sha256_of", "read_mapping"]

_WRAPPER_KEYS = ("network", "state_dict", "model")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into the requested network."""


def read_mapping(checkpoint: str | Path | Mapping[str, Any], *, map_location: Any = "cpu") -> tuple[Mapping, str]:
    """``(the dict a checkpoint holds, where it came from)`` for a path (``torch.load(weights_only=True)``:
    nothing in the file is executed) or an in-memory dict; :class:`CheckpointError` names the file."""
    source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "<state dict>"
    if isinstance(checkpoint, (str, Path)):
        path = Path(checkpoint)
        if not path.is_file():
            raise CheckpointError(f"checkpoint file not found: {path}")
        try:
            obj = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # truncated zip, pickle with code, not a torch file ...
            raise CheckpointError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    else:
        obj = checkpoint
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: expected a state dict, got {type(obj).__name__}")
    return obj, source


def read_state_dict(checkpoint: str | Path | Mapping[str, Any], *, map_location: Any = "cpu") -> dict[str, torch.Tensor]:
    """Return a flat ``name -> tensor`` dict from a path or an in-memory (possibly wrapped) dict."""
    obj, source = read_mapping(checkpoint, map_location=map_location)
    for key in _WRAPPER_KEYS:
        if key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    state = {}
    for name, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: entry {name!r} is {type(value).__name__}, not a tensor")
        state[name[7:] if name.startswith("module.") else name] = value
    return state


def check_state_dict(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Raise :class:`CheckpointError` listing every missing, unexpected and mis-shaped key."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(expected[k].shape)}"
        for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    problems = []
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", shapes)):
        if items:
            shown = ", ".join(items[:10]) + (f", ... ({len(items)} in all)" if len(items) > 10 else "")
            problems.append(f"{title}: {shown}")
    if problems:
        raise CheckpointError(f"{source} does not match the network; " + "; ".join(problems))


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> nn.Module:
    """Check ``state`` against ``module`` and load it strictly; returns the module."""
    check_state_dict(module.state_dict(), state, source)
    module.load_state_dict(dict(state), strict=True)
    return module


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, recorded with every result so numbers can be traced to weights."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
