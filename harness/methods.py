"""Method registry: one YAML preset per method in ``harness/methods/<method>.yaml``.

A method is ``model[+ttt]`` (``stcn``, ``stcn+mcc``, ...).  Its preset names the model, the
checkpoint file, the keyword arguments of ``segment`` and the test-time-training preset.  A preset
may inherit another with ``base: <method>`` and state only what differs (``stcn+mcc`` is
``base: stcn`` + ``ttt: stcn_mcc``); bases may chain, cycles are refused.  Users change a preset
without editing it: ``--config FILE`` merges a YAML file on top and ``--set key=value`` sets one
(dotted) key with a YAML-typed value (``--set segment.top_k=30``, ``--set ttt_params.iterations=2``,
``--set resolution=null``); a bare model option that the preset already has in ``load`` or
``segment`` may be given without its section (``--set top_k=30``, ``--set encoder=pixels k=10``).

Merging, dotted overrides and type checking are OmegaConf's (the config library of SAM 2 and
Cutie): every resolved method is checked against the :class:`MethodConfig` schema, so an unknown
key or a value of the wrong type (``--set resolution=abc``) fails before any work with the key named.
The contents of ``load`` and ``segment`` belong to the model: ``model`` is looked up in the one registry
(:mod:`models.registry`) and the ``segment`` options are checked by the model family's own declared
options (:mod:`models.base`, called from :func:`harness.options.check_options`), not here.
The fully resolved dict is what ``run.json`` records, so every number can be traced to the settings
that produced it.
"""
from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional

import yaml
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from common import presets
from common.presets import merge

__all__ = ["METHODS_DIR", "MethodError", "available_methods", "load_method", "parse_set", "apply_set",
           "merge", "DEFAULTS", "REFERENCE_KEYS", "check_reference_fields"]

METHODS_DIR = Path(__file__).resolve().parent / "methods"


@dataclasses.dataclass
class MethodConfig:
    """The schema of a resolved method (OmegaConf structured config): keys, types and defaults."""

    description: str = ""
    model: str = MISSING                    # a models.registry name, or "pkg.module:function"
    checkpoint: Optional[str] = None        # weights file name, looked up as given / ./saves / $DAVIS_C_CHECKPOINTS
    download: Optional[str] = None          # where the official weights come from (shown when missing)
    load: Dict[str, Any] = dataclasses.field(default_factory=dict)        # keywords of the model's builder
    segment: Dict[str, Any] = dataclasses.field(default_factory=dict)     # segment options (models.base)
    ttt: Optional[str] = None               # models.ttt preset name, or None for no TTT
    ttt_params: Dict[str, Any] = dataclasses.field(default_factory=dict)  # overrides of the TTT preset
    propagation: Dict[str, Any] = dataclasses.field(default_factory=dict)  # JHMDB/VIP protocol overrides (harness.correspondence)
    resolution: Optional[int] = 480         # shorter side fed to the model; None keeps the source size
    random_init_scale: float = 1.0          # golden_init s used by --random-init
    # the no-adaptation method this one's adaptation gain is measured against in the leaderboard's TTT-gain
    # table (e-OSVOS-N vs its 0-step init); None: the name before the last '+' (stcn+mcc -> stcn)
    pairs_with: Optional[str] = None
    # report metadata (not used to run anything): the method's name in the DAVIS-C paper's tables (None when
    # the paper has no such row) and its published numbers, each with its source (docs/leaderboard.md)
    paper_name: Optional[str] = None
    published: List[Dict[str, Any]] = dataclasses.field(default_factory=list)


#: Keys every resolved method has; values are the defaults used when a preset leaves one out.
DEFAULTS: dict[str, Any] = {
    f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING
    else (None if f.default == MISSING else f.default)
    for f in dataclasses.fields(MethodConfig)}
#: settings that describe where a method's published numbers are, not how it runs.
REFERENCE_KEYS = ("paper_name", "published")
_SCI_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
# Keys whose values are free-form keyword dicts (their sub-keys are not checked here).
_DICT_KEYS = ("load", "segment", "ttt_params", "propagation")


class MethodError(ValueError):
    """A method name, preset file or override that cannot be used."""


def available_methods(methods_dir: str | Path = METHODS_DIR) -> list[str]:
    """Names of the presets shipped in ``methods_dir`` (file stems), sorted."""
    return presets.available(methods_dir)


def _read_preset(name: str, methods_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """Preset ``name`` with its ``base:`` chain merged in (base first); returns (config, files read)."""
    return presets.load_preset(name, methods_dir, what="method", error=MethodError, paths=False,
                               hint=" (or describe a new one with --config FILE)")


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
    if len(parts) != 1 or parts[0] in DEFAULTS:
        return parts
    homes = [section for section in ("load", "segment")
             if isinstance(config.get(section), Mapping) and parts[0] in config[section]]
    if len(homes) == 1:
        return [homes[0], parts[0]]
    where = "both load and segment" if homes else "neither load nor segment of this method"
    raise MethodError(f"--set {item!r}: {parts[0]!r} is not a top-level setting and is in {where}; "
                      f"write it as load.{parts[0]}=... or segment.{parts[0]}=...")


def apply_set(config: Mapping[str, Any], items: Iterable[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides in order (OmegaConf dotted update); intermediate dicts are created."""
    cfg = OmegaConf.create(copy.deepcopy(dict(config)))
    for item in items:
        parts, value = parse_set(item)
        parts = _resolve_shorthand(OmegaConf.to_container(cfg), parts, item)
        for i in range(1, len(parts)):
            node = OmegaConf.select(cfg, ".".join(parts[:i]))
            if node is not None and not OmegaConf.is_dict(node):
                raise MethodError(f"--set {item!r}: {'.'.join(parts[:i])} is {node!r}, not a mapping")
        try:
            OmegaConf.update(cfg, ".".join(parts), value, merge=False, force_add=True)
        except OmegaConfBaseException as exc:
            raise MethodError(f"--set {item!r}: {str(exc).splitlines()[0]}") from None
    return OmegaConf.to_container(cfg)


def check_reference_fields(paper_name: Any, published: Any, origin: str) -> tuple[str | None, list[dict]]:
    """Validate ``paper_name`` (a row name of ``leaderboard/paper_reference.csv`` or null) and ``published``
    (a list of ``{benchmark: str, JF: percent, source: str, note: str (optional)}``)."""
    if paper_name is not None and (not isinstance(paper_name, str) or not paper_name.strip()):
        raise MethodError(f"{origin}: 'paper_name' must be the method's name in the paper's tables or null, "
                          f"got {paper_name!r}")
    published = [] if published is None else published
    if not isinstance(published, list):
        raise MethodError(f"{origin}: 'published' must be a list of {{benchmark, JF, source}} entries")
    out = []
    for i, entry in enumerate(published):
        where = f"{origin}: published[{i}]"
        if not isinstance(entry, Mapping):
            raise MethodError(f"{where} must be a mapping with benchmark, JF and source, got {entry!r}")
        extra = sorted(set(entry) - {"benchmark", "JF", "source", "note"})
        if extra:
            raise MethodError(f"{where}: unknown key(s) {', '.join(extra)} (known: benchmark, JF, source, note)")
        for key in ("benchmark", "source"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise MethodError(f"{where}: {key!r} must be a non-empty string")
        jf = entry.get("JF")
        if isinstance(jf, bool) or not isinstance(jf, (int, float)) or not 0 <= jf <= 100:
            raise MethodError(f"{where}: 'JF' must be a J&F in percent (0..100), got {jf!r}")
        out.append({"benchmark": entry["benchmark"], "JF": float(jf), "source": entry["source"],
                    "note": str(entry.get("note") or "")})
    return paper_name, out


def _validate(config: dict[str, Any], origin: str) -> dict[str, Any]:
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise MethodError(f"{origin}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    config = dict(config)
    for key in _DICT_KEYS:                      # "segment:" with nothing after it means an empty mapping
        if key in config and config[key] is None:
            config[key] = {}
    if not config.get("model") or not isinstance(config["model"], str):
        raise MethodError(f"{origin}: 'model' must name a model (e.g. stcn)")
    for key in _DICT_KEYS:
        if key in config and not isinstance(config[key], Mapping):
            raise MethodError(f"{origin}: {key!r} must be a mapping, got {config[key]!r}")
    pairs_with = config.get("pairs_with")
    if pairs_with is not None and (not isinstance(pairs_with, str) or not pairs_with.strip()):
        raise MethodError(f"{origin}: 'pairs_with' must name a method or be null, got {pairs_with!r}")
    res = config.get("resolution", DEFAULTS["resolution"])
    if res is not None and (isinstance(res, bool) or not isinstance(res, int) or res <= 0):
        raise MethodError(f"{origin}: 'resolution' must be a positive shorter-side length or null, got {res!r}")
    # report metadata is checked as written (the schema would turn ``paper_name: 3`` into "3")
    check_reference_fields(config.get("paper_name"), config.get("published"), origin)
    try:
        schema = OmegaConf.structured(MethodConfig)
        resolved = OmegaConf.to_container(OmegaConf.merge(schema, OmegaConf.create(config)), throw_on_missing=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        raise MethodError(f"{origin}: setting {key!r}: {str(exc).splitlines()[0]}") from None
    resolved["paper_name"], resolved["published"] = check_reference_fields(
        resolved["paper_name"], resolved["published"], origin)
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
        config, files = _read_preset(name, Path(methods_dir))
        origin.extend(files)
    if config_file is not None:
        config_file = Path(config_file)
        top = presets.read_yaml(config_file, what="method config", error=MethodError)
        base = top.pop("base", None)
        if base is not None:            # a user file may inherit a shipped preset too
            if not isinstance(base, str):
                raise MethodError(f"{config_file}: 'base' must name a method preset, got {base!r}")
            parent, files = _read_preset(base, Path(methods_dir))
            config = merge(config, parent) if config else parent
            origin.extend(files)
        config = merge(config, top)
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
