"""Method registry: one YAML preset per method in ``harness/methods/<method>.yaml``.

A method is ``model[+ttt]`` (``stcn``, ``stcn+mcc``, ...).  Its preset names the model, the
checkpoint file, the keyword arguments of ``segment`` and the test-time-training preset.  Users
change a preset without editing it: ``--config FILE`` merges a YAML file on top and
``--set key=value`` sets one (dotted) key with a YAML-typed value (``--set segment.top_k=30``,
``--set ttt_params.iterations=2``, ``--set resolution=null``); a bare model option that the preset
already has in ``load`` or ``segment`` may be given without its section (``--set top_k=30``,
``--set encoder=pixels k=10``).  The fully resolved dict is what
``run.json`` records, so every number can be traced to the settings that produced it.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

__all__ = ["METHODS_DIR", "MethodError", "available_methods", "load_method", "parse_set", "apply_set",
           "merge", "DEFAULTS", "METADATA_KEYS"]

METHODS_DIR = Path(__file__).resolve().parent / "methods"

#: Keys every resolved method has; values are the defaults used when a preset leaves one out.
DEFAULTS: dict[str, Any] = {
    "description": "",
    "model": None,
    "checkpoint": None,
    "download": None,
    "load": {},
    "segment": {},
    "ttt": None,
    "ttt_params": {},
    "resolution": 480,
    "random_init_scale": 1.0,
}
#: Optional report metadata a preset may carry (nothing runs on them; kept out of DEFAULTS so presets
#: without them resolve exactly as before): the method's name in the DAVIS-C paper's tables (null when
#: the paper has no such row) and ``published: [{benchmark, JF, source}, ...]``.
METADATA_KEYS = ("paper_name", "published")
_SCI_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
# Keys whose values are free-form keyword dicts (their sub-keys are not checked here).
_DICT_KEYS = ("load", "segment", "ttt_params")


class MethodError(ValueError):
    """A method name, preset file or override that cannot be used."""


def available_methods(methods_dir: str | Path = METHODS_DIR) -> list[str]:
    """Names of the presets shipped in ``methods_dir`` (file stems), sorted."""
    return sorted(p.stem for p in Path(methods_dir).glob("*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise MethodError(f"cannot read method config {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise MethodError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MethodError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: mappings merge key by key, anything else in ``top`` replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_set(item: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` -> (["a", "b"], 3); the value is parsed as YAML (numbers, null, lists, ...)."""
    if "=" not in item:
        raise MethodError(f"--set expects key=value, got {item!r}")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise MethodError(f"--set {item!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise MethodError(f"--set {item!r}: value is not valid YAML: {exc}") from exc
    if isinstance(value, str) and _SCI_FLOAT.fullmatch(raw.strip()):
        value = float(raw)  # YAML 1.1 reads "1e-5" (no dot) as a string; users mean the number
    return parts, value


def _resolve_shorthand(config: Mapping[str, Any], parts: list[str], item: str) -> list[str]:
    """Let ``--set k=10`` mean ``segment.k=10`` when the preset already has that model setting.

    Users think in the model's own option names (``encoder``, ``top_k``); the section they live in
    is an implementation detail of the preset, so a bare name that is not a top-level setting is
    looked up in ``load`` and ``segment`` (it must be found in exactly one of them).
    """
    if len(parts) != 1 or parts[0] in DEFAULTS or parts[0] in METADATA_KEYS:
        return parts
    homes = [section for section in ("load", "segment")
             if isinstance(config.get(section), Mapping) and parts[0] in config[section]]
    if len(homes) == 1:
        return [homes[0], parts[0]]
    where = "both load and segment" if homes else "neither load nor segment of this method"
    raise MethodError(f"--set {item!r}: {parts[0]!r} is not a top-level setting and is in {where}; "
                      f"write it as load.{parts[0]}=... or segment.{parts[0]}=...")


def apply_set(config: Mapping[str, Any], items: Iterable[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides in order; intermediate dicts are created as needed."""
    out = copy.deepcopy(dict(config))
    for item in items:
        parts, value = parse_set(item)
        parts = _resolve_shorthand(out, parts, item)
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise MethodError(f"--set {item!r}: {'.'.join(parts[:i + 1])} is {child!r}, not a mapping")
            node = child
        node[parts[-1]] = value
    return out


def _validate(config: dict[str, Any], origin: str) -> dict[str, Any]:
    unknown = sorted(set(config) - set(DEFAULTS) - set(METADATA_KEYS))
    if unknown:
        raise MethodError(f"{origin}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    resolved = merge(DEFAULTS, config)
    if not resolved["model"] or not isinstance(resolved["model"], str):
        raise MethodError(f"{origin}: 'model' must name a model (e.g. stcn)")
    for key in _DICT_KEYS:
        if resolved[key] is None:
            resolved[key] = {}
        if not isinstance(resolved[key], dict):
            raise MethodError(f"{origin}: {key!r} must be a mapping, got {resolved[key]!r}")
    if resolved["ttt"] is not None and not isinstance(resolved["ttt"], str):
        raise MethodError(f"{origin}: 'ttt' must be a preset name or null, got {resolved['ttt']!r}")
    res = resolved["resolution"]
    if res is not None and (isinstance(res, bool) or not isinstance(res, int) or res <= 0):
        raise MethodError(f"{origin}: 'resolution' must be a positive shorter-side length or null, got {res!r}")
    return resolved


def load_method(name: str | None = None, *, config_file: str | Path | None = None,
                overrides: Iterable[str] = (), methods_dir: str | Path = METHODS_DIR) -> tuple[str, dict[str, Any]]:
    """Resolve a method: preset ``name`` <- ``config_file`` <- ``overrides``.

    Returns ``(method_name, config)``.  Without ``name`` the config file must be complete and the
    method is named after the file's stem.
    """
    overrides = list(overrides)
    if name is None and config_file is None:
        raise MethodError("give --method NAME (see --list) or --config FILE")
    config: dict[str, Any] = {}
    origin = []
    if name is not None:
        path = Path(methods_dir) / f"{name}.yaml"
        if not path.is_file():
            raise MethodError(f"unknown method {name!r}; available: {', '.join(available_methods(methods_dir))} "
                              f"(or describe a new one with --config FILE)")
        config = _read_yaml(path)
        origin.append(str(path))
    if config_file is not None:
        config_file = Path(config_file)
        config = merge(config, _read_yaml(config_file))
        origin.append(str(config_file))
        if name is None:
            name = config_file.stem
    if overrides:
        config = apply_set(config, overrides)
        origin.append("--set")
    return name, _validate(config, " + ".join(origin))


def describe_methods(methods_dir: str | Path = METHODS_DIR) -> str:
    """The text of ``--list``: each method with its description and main settings."""
    lines = []
    for name in available_methods(methods_dir):
        try:
            _, cfg = load_method(name, methods_dir=methods_dir)
        except MethodError as exc:
            lines.append(f"{name:<14} (broken preset: {exc})")
            continue
        ttt = cfg["ttt"] or "-"
        seg = ", ".join(f"{k}={v}" for k, v in cfg["segment"].items())
        lines.append(f"{name:<14} {cfg['description']}")
        lines.append(f"{'':<14} model={cfg['model']} checkpoint={cfg['checkpoint']} ttt={ttt} "
                     f"resolution={cfg['resolution']} {seg}".rstrip())
    return "\n".join(lines)
