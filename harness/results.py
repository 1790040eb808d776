"""Result files of a harness run: where they live, how they are written and read.

Layout under ``--out`` (default ``results/``)::

    <method>/run.json                                   settings, versions, checkpoint hash
    <method>/<variant>/<video>/seed<seed>.json          one scored unit ("clean" or "<strength>/<corruption>")
    <method>/<variant>/<video>/seed<seed>/<frame>.png   predicted masks (--save-masks), DAVIS palette

Every file is written to a temporary name in its final folder and renamed into place, so a killed run
never leaves a truncated file that looks finished; the unit JSON is written last and is the marker
that a unit is done.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from common.atomic import DIR_MODE, FILE_MODE, TEMP_MARK, publish

__all__ = ["UNIT_SCHEMA", "RunMismatch", "unit_path", "mask_dir", "write_json_atomic", "read_json",
           "read_unit", "unit_status", "remove_stale_temps", "write_run_json", "read_run_json",
           "iter_unit_files", "read_units", "masks_for_evaluation", "jf_summary", "fmt_pct", "RecordError",
           "check_method_name", "TEMP_MARK", "FILE_MODE", "DIR_MODE"]

UNIT_SCHEMA = "davis-c-unit/1"
#: run.json fields that must agree before new units are added next to old ones.
IDENTITY_KEYS = ("config", "random_init", "checkpoint_sha256")
#: run.json lists a rerun extends: what the runs of this method planned (the leaderboard's expected units).
PLAN_KEYS = ("seeds", "variants", "videos")
#: config keys that only say where the method's published numbers are (not how it ran).
_INFO_CONFIG_KEYS = ("paper_name", "published")


def _identity(value: Any, key: str) -> Any:
    if key == "config" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in _INFO_CONFIG_KEYS}
    return value




class RecordError(ValueError):
    """A unit record that must not be written (it contradicts its unit or has no valid score)."""


def check_method_name(name: str, option: str = "--method") -> str:
    """Refuse a method (results folder) name the results reader would skip or misread: empty, with white
    space at either end, a path separator, ``.``/``..``, or starting with ``.`` (hidden folders are not read
    by the leaderboard, so the results would silently vanish)."""
    if not isinstance(name, str) or not name.strip():
        raise RecordError(f"{option}: empty name")
    if name != name.strip():
        raise RecordError(f"{option} {name!r}: leading or trailing white space")
    if "/" in name or "\\" in name or "\x00" in name:
        raise RecordError(f"{option} {name!r}: must be a plain folder name (no path separator)")
    if name.startswith("."):
        raise RecordError(f"{option} {name!r}: a name starting with '.' is a hidden folder, which the results "
                          "reader (leaderboard.build) skips; choose a name without the leading '.'")
    return name


class RunMismatch(ValueError):
    """``--out`` already holds this method's results produced with other settings or weights."""


def unit_path(out: str | os.PathLike, method: str, variant: str, video: str, seed: int) -> Path:
    return Path(out) / method / variant / video / f"seed{seed}.json"


def mask_dir(out: str | os.PathLike, method: str, variant: str, video: str, seed: int) -> Path:
    return Path(out) / method / variant / video / f"seed{seed}"


def _clean_json(obj: Any) -> Any:
    """NaN/inf -> None so that the files are strict JSON any tool can read."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_json(v) for v in obj]
    return obj


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as strict JSON to ``path`` atomically and durably (``common.atomic``, fsynced)."""
    from common.atomic import atomic_write

    path = Path(path)
    with atomic_write(path, "w", fsync=True) as fh:
        json.dump(_clean_json(obj), fh, indent=1, allow_nan=False)
        fh.write("\n")
    return path


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def read_unit(path: str | os.PathLike) -> dict | None:
    """A unit record, or None when the file is absent or not a readable unit (then it is redone)."""
    try:
        rec = read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("schema") != UNIT_SCHEMA or rec.get("status") not in ("ok", "failed"):
        return None
    return rec


def unit_status(path: str | os.PathLike) -> str | None:
    """"ok", "failed" or None (not done yet)."""
    rec = read_unit(path)
    return None if rec is None else rec["status"]


def remove_stale_temps(path: str | os.PathLike) -> None:
    """Delete leftovers of a killed attempt at this unit (its temp JSON and temp mask folders).

    Only names derived from this unit are touched: other shards may be writing next to it.
    """
    import shutil

    path = Path(path)
    if not path.parent.is_dir():
        return
    stem = path.stem  # "seed5"
    for p in path.parent.iterdir():
        if p.name.startswith((f".{path.name}{TEMP_MARK}", f".{stem}{TEMP_MARK}")):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def read_run_json(out: str | os.PathLike, method: str) -> dict | None:
    path = Path(out) / method / "run.json"
    if not path.is_file():
        return None
    try:
        return read_json(path)
    except (OSError, ValueError) as exc:
        raise RunMismatch(f"{path} is unreadable ({exc}); move it away to start this method afresh") from exc


def write_run_json(out: str | os.PathLike, method: str, info: dict) -> dict:
    """Create ``<method>/run.json`` or check that the existing one describes the same setup.

    New seeds are added to the recorded list; the creation time of the first run is kept.  Refuses
    (:class:`RunMismatch`) to mix results of different settings or weights under one method name.
    """
    check_method_name(method)  # a name the results reader would skip is refused here, not hidden there
    path = Path(out) / method / "run.json"
    old = read_run_json(out, method)
    if old is None:
        # Create-if-absent in one step, so shards of a job array starting together never overwrite each other.
        tmp = write_json_atomic(path.with_name(f".run.json{TEMP_MARK}{os.getpid()}.json"), info)
        try:
            os.link(tmp, path)
            return info
        except FileExistsError:
            old = read_run_json(out, method)
        except OSError:  # a file system without hard links
            publish(tmp, path)
            return info
        finally:
            tmp.unlink(missing_ok=True)
    clean_info = _clean_json(info)
    diffs = [k for k in IDENTITY_KEYS if _identity(old.get(k), k) != _identity(clean_info.get(k), k)]
    if diffs:
        detail = "; ".join(f"{k}: recorded {json.dumps(old.get(k))[:200]} vs now {json.dumps(clean_info.get(k))[:200]}"
                           for k in diffs)
        raise RunMismatch(f"{path} records a different setup ({detail}). Use another --out folder or "
                          f"--name for this run, or remove {path.parent} to start afresh")
    merged = dict(old)
    for key in PLAN_KEYS:  # a later run may plan more seeds, variants or videos: the union is expected
        have = list(old.get(key) or [])
        added = [v for v in info.get(key) or [] if v not in have]
        if added:
            merged[key] = have + added
    if merged != old:
        write_json_atomic(path, merged)
    return merged


def iter_unit_files(out: str | os.PathLike, method: str) -> Iterator[Path]:
    """Every ``seed<N>.json`` under ``<out>/<method>`` (any variant depth), sorted."""
    root = Path(out) / method
    for path in sorted(root.rglob("seed*.json")):
        if not path.name.startswith(".") and path.stem[4:].lstrip("-").isdigit():
            yield path


def read_units(out: str | os.PathLike, method: str, paths: Iterable[Path] | None = None) -> list[dict]:
    """All readable unit records of a method (or of the given files)."""
    recs = []
    for path in (paths if paths is not None else iter_unit_files(out, method)):
        rec = read_unit(path)
        if rec is not None:
            recs.append(rec)
    return recs


def masks_for_evaluation(out: str | os.PathLike, method: str, variant: str, seed: int,
                         dest: str | os.PathLike) -> Path:
    """Lay out one (method, variant, seed)'s saved masks as ``dest/<video>/<frame>.png`` (symbolic links,
    copies where links are not possible): the folder ``harness.evaluate`` and the official
    ``evaluation_method.py --task semi-supervised`` read, with the DAVIS root as ground truth."""
    import shutil

    src_root = Path(out) / method / variant
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    found = 0
    for video_dir in sorted(p for p in src_root.iterdir() if p.is_dir()):
        masks = video_dir / f"seed{seed}"
        if not masks.is_dir():
            continue
        found += 1
        target = dest / video_dir.name
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        try:
            target.symlink_to(masks.resolve(), target_is_directory=True)
        except OSError:
            shutil.copytree(masks, target)
    if not found:
        raise FileNotFoundError(f"no saved masks for seed {seed} under {src_root} (run with --save-masks)")
    return dest


def fmt_pct(x: float | None) -> str:
    """A score in [0, 1] as the toolkit shows it everywhere (tables, progress bars): percent, one decimal."""
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def jf_summary(title: str, items: Iterable[tuple[Any, str, dict | None]], banner: str | None = None) -> str:
    """The per-variant J&F table ``harness.run`` and ``harness.score`` print: ``items`` are (unit label,
    variant, record or None).  Per variant: units ok, mean J&F (official global mean: objects weighted
    equally, computed per seed, then averaged over seeds; ± the std over seeds), J and F, in percent."""
    import numpy as np

    rows, failures, by_variant = [], [], {}
    for label, variant, rec in items:
        by_variant.setdefault(variant, []).append((label, rec))
    for variant, group in by_variant.items():
        per_seed: dict[int, list[tuple[float, float]]] = {}
        n_ok = n_server = 0
        for label, rec in group:
            if rec is None:
                continue
            if rec["status"] == "failed":
                failures.append(f"  {label}: {rec.get('error')}")
                continue
            n_ok += 1
            if rec.get("scoring") == "server":  # private ground truth: harness.submission exports it
                n_server += 1
                continue
            per_seed.setdefault(int(rec["seed"]), []).extend((o["J"], o["F"]) for o in rec["objects"])
        seed_jf, seed_j, seed_f = [], [], []
        for vals in per_seed.values():
            arr = np.asarray(vals, dtype=float)
            j, f = arr[:, 0].mean(), arr[:, 1].mean()
            seed_j.append(j)
            seed_f.append(f)
            seed_jf.append((j + f) / 2)
        jf = float(np.mean(seed_jf)) if seed_jf else None
        sd = f" ±{100 * np.std(seed_jf):.1f}" if len(seed_jf) > 1 else ""
        if n_server and not seed_jf:
            rows.append((variant, f"{n_ok}/{len(group)}", "submit to score", "-", "-"))
            continue
        rows.append((variant, f"{n_ok}/{len(group)}", fmt_pct(jf) + sd,
                     fmt_pct(float(np.mean(seed_j)) if seed_j else None),
                     fmt_pct(float(np.mean(seed_f)) if seed_f else None)))
    header = ("variant", "units ok", "J&F", "J", "F")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]

    def line(r):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    text = [title, line(header), line(tuple("-" * w for w in widths))] + [line(r) for r in rows]
    if banner:
        text.append(f"!! {banner}")
    if failures:
        text.append(f"{len(failures)} failed unit(s) (rerun the same command to retry them):")
        text.extend(failures)
    return "\n".join(text)
