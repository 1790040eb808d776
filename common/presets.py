"""YAML presets on disk, one loader for all of them: method presets (``harness/methods``), TTT presets
(``models/ttt/presets``) and SAM 2 configurations (``models/sam2/configs``).

A preset is a YAML mapping in a folder of presets, named by its file stem; where the caller allows it, a
path to a ``.yaml``/``.yml`` file (a user's edited copy) works too.  A preset may inherit another one of
the same folder with ``base: <name>`` and state only what differs; bases may chain and a cycle is refused.
Merging follows OmegaConf's rules (the config library of SAM 2 and Cutie): mappings merge key by key,
anything else in the inheriting preset replaces the base's value (lists too).  A preset without ``base``
is returned exactly as YAML reads it.

Every problem raises the caller's error type (a :class:`ValueError`; default :class:`PresetError`) naming
the file: so ``harness.methods`` raises its ``MethodError`` and the models their ``ValueError``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml
from omegaconf import OmegaConf

__all__ = ["PresetError", "available", "read_yaml", "merge", "load_preset"]

_SUFFIXES = (".yaml", ".yml")


class PresetError(ValueError):
    """A preset that cannot be found, read or resolved; the message names the file."""


def available(folder: str | Path) -> list[str]:
    """Names (file stems) of the presets in ``folder``, sorted."""
    return sorted(p.stem for p in Path(folder).glob("*.yaml"))


def read_yaml(path: str | Path, *, what: str = "preset", error: type[ValueError] = PresetError) -> dict[str, Any]:
    """One YAML file as a dict (an empty file is ``{}``); anything but a mapping is an error."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise error(f"cannot read {what} file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive merge of two plain config dicts (OmegaConf's rules): mappings merge key by key,
    anything else in ``top`` replaces (lists too)."""
    merged = OmegaConf.merge(OmegaConf.create(dict(base)), OmegaConf.create(dict(top)))
    return OmegaConf.to_container(merged)


def _find(name: str | Path, folder: Path, what: str, error: type[ValueError], hint: str, paths: bool,
          chain: tuple[str, ...]) -> Path:
    path = Path(name)
    if paths and path.suffix in _SUFFIXES:
        if not path.is_file():
            raise error(f"{what} file not found: {path}")
        return path
    path = folder / f"{name}.yaml"
    if not path.is_file():
        where = f"base of {chain[-1]!r}" if chain else what
        raise error(f"unknown {where} {str(name)!r}; available: {', '.join(available(folder))}{hint}")
    return path


def load_preset(name: str | Path, folder: str | Path, *, what: str = "preset",
                error: type[ValueError] = PresetError, hint: str = "", paths: bool = True,
                _chain: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[str]]:
    """Preset ``name`` of ``folder`` (or, with ``paths``, a YAML file's path) with its ``base:`` chain merged
    in, base first.  Returns ``(settings, files read)``, the files in the order they were merged.

    ``what`` names the kind of preset in messages (``"TTT preset"``); ``hint`` is appended to the message
    of an unknown name."""
    key = str(name)
    if key in _chain:
        raise error(f"{what}s inherit in a cycle: {' -> '.join((*_chain, key))}")
    path = _find(name, Path(folder), what, error, hint, paths, _chain)
    config = read_yaml(path, what=what, error=error)
    base = config.pop("base", None)
    if base is None:
        return config, [str(path)]
    if not isinstance(base, str):
        raise error(f"{path}: 'base' must name another {what}, got {base!r}")
    parent, files = load_preset(base, folder, what=what, error=error, hint=hint, paths=False,
                                _chain=(*_chain, key))
    return merge(parent, config), [*files, str(path)]
