"""The report's qualitative pages: one page per video (mask overlays of the ground truth and every method that
saved masks, per-frame J&F over the clean baseline, the worst frames marked) and the corruption gallery.

Frames and ground truth come through the harness's public data API (``harness.data.open_source``: a DAVIS-C
HDF5 store, a DAVIS root or a DAVIS-C folder tree), from ``--data`` or, by default, from the ``data_path`` the
unit records name; predicted masks are the PNGs ``harness.run --save-masks`` wrote into the results tree
(``harness.results.mask_dir``). Images are JPEG thumbnails (``overlay.THUMB_WIDTH`` px wide, quality
``overlay.THUMB_QUALITY``) in ``<out>/videos/`` and ``<out>/gallery/``, linked relatively: the report stays one
folder that opens offline.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from common.atomic import write_text_atomic
from harness.results import mask_dir
from leaderboard.overlay import THUMB_QUALITY, THUMB_WIDTH, overlay, read_label_map, save_thumbnail
from leaderboard.plots import frame_curves, plot_frame_curves, save_figure, worst_frames
from leaderboard.results import Results
from leaderboard.tables import Tables, pct

if TYPE_CHECKING:  # harness.data reads stores (h5py, the DAVIS readers): imported when frames are read
    from harness.data import Source

__all__ = ["VideoData", "open_data", "saved_masks", "sample_frames", "make_pages", "safe_name", "rerun_command"]

N_FRAMES = 5  # sampled frames per strip
N_WORST = 3  # worst frames marked per method


def n_worst(n_scored: int) -> int:
    """How many worst frames to mark: ``N_WORST``, at most a quarter of the scored frames (at least 1)."""
    return max(1, min(N_WORST, n_scored // 4))


def safe_name(text: str) -> str:
    """A file name for a video / variant / method: ``high/contrast`` -> ``high_contrast``, ``stcn+mcc`` kept."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def open_data(results: Results, data: str | Path | None = None,
              annotations: str | Path | None = None) -> tuple[Source | None, str]:
    """The frames' source: ``data`` or the first existing ``data_path`` the unit records name.

    Returns (source, "") or (None, why not) -- a report built away from the data still builds, and says so."""
    from harness.data import open_source  # the harness's public data API (stores, DAVIS roots, folder trees)

    tried: list[str] = []
    candidates = [str(data)] if data else []
    if not data:
        for path in results.units[results.units.status == "ok"].path:
            try:
                rec = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            dp = rec.get("data_path") if isinstance(rec, dict) else None
            if dp and dp not in candidates:
                candidates.append(dp)
            if len(candidates) >= 3:
                break
    for cand in candidates:
        try:
            return open_source(cand, annotations), ""
        except (OSError, ValueError) as exc:  # harness.data.DataError is a ValueError
            tried.append(f"{cand}: {exc}")
    if not candidates:
        return None, "no unit record names its data (data_path) and no --data was given"
    return None, "; ".join(tried)


def saved_masks(root: Path, method: str, variant: str, video: str, seeds: Sequence[int],
                frame_names: Sequence[str]) -> tuple[int, dict[int, Path]] | None:
    """(seed, {frame index: mask PNG}) of the lowest seed whose --save-masks folder exists, else None."""
    for seed in sorted(seeds):
        folder = mask_dir(root, method, variant, video, int(seed))
        if folder.is_dir():
            found = {t: folder / f"{name}.png" for t, name in enumerate(frame_names) if (folder / f"{name}.png").is_file()}
            if found:
                return int(seed), found
    return None


def sample_frames(n_frames: int, k: int = N_FRAMES, extra: Sequence[int] = ()) -> list[int]:
    """``k`` evenly spaced frame indices (first and last included) plus ``extra``, sorted, unique."""
    even = np.linspace(0, n_frames - 1, num=min(k, n_frames)).round().astype(int).tolist()
    return sorted({int(t) for t in [*even, *extra] if 0 <= t < n_frames})


def _frame_jf(pf_curve: np.ndarray, names: Sequence[str] | None, frame_names: Sequence[str]) -> dict[int, float]:
    """Per-frame J&F keyed by video frame index (per_frame["frames"] names them; else frames 1..T-2)."""
    index = {n: t for t, n in enumerate(frame_names)}
    if names:
        return {index[n]: float(v) for n, v in zip(names, pf_curve) if n in index}
    return {t + 1: float(v) for t, v in enumerate(pf_curve)}


@dataclass
class VideoData:
    """What one strip shows: frames, ground truth, and per method its masks, J&F and worst frames."""

    variant: str
    frames: np.ndarray | None = None
    gt: np.ndarray | None = None
    frame_names: list[str] = field(default_factory=list)
    masks: dict[str, dict[int, Path]] = field(default_factory=dict)  # method -> frame -> PNG
    seeds: dict[str, int] = field(default_factory=dict)
    jf: dict[str, dict[int, float]] = field(default_factory=dict)  # method -> frame -> J&F
    video_jf: dict[str, float] = field(default_factory=dict)  # method -> the unit's J&F
    note: str = ""


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out


_NOT_SETTINGS = ("description", "ttt_resolved", "paper_name", "published", "download")


def _overrides(method: str, config: dict[str, Any]) -> list[str]:
    """``--set key=value`` for every recorded setting that differs from the shipped preset ``method``
    (a rerun must match run.json, or harness.run refuses to mix the results)."""
    if not config:
        return []
    from harness.methods import MethodError, load_method

    try:
        _, preset = load_method(method)
    except (MethodError, OSError, ValueError):
        return []
    ours, theirs = _flat(config), _flat(preset)
    sets = []
    for key, value in ours.items():
        if key.split(".")[0] in _NOT_SETTINGS or theirs.get(key, object()) == value:
            continue
        text = "null" if value is None else (str(value).lower() if isinstance(value, bool) else
                                             json.dumps(value) if isinstance(value, (list, dict)) else str(value))
        sets.append(f"{key}={text}")
    return sets


def rerun_command(run: dict[str, Any], method: str, variant: str, video: str, results_root: Path,
                  data: str | None) -> str:
    """The ``harness.run`` command that writes this unit's masks: the method's folder name as the preset,
    the recorded settings that differ from it as ``--set``, the same weights and data."""
    cmd = ["python", "-m", "harness.run", "--method", method]
    if run.get("random_init"):
        cmd += ["--random-init"]
    elif run.get("checkpoint"):
        cmd += ["--checkpoint", str(run["checkpoint"])]
    sets = _overrides(method, run.get("config") or {})
    if sets:
        cmd += ["--set", *sets]
    if data:
        cmd += ["--data", str(data)]
    cmd += ["--variants", variant, "--videos", video, "--out", str(results_root), "--save-masks"]
    return " ".join(shlex.quote(c) for c in cmd)


def _strip(vd: VideoData, frames: list[int], out_dir: Path, video: str, methods: list[str],
           rel: Callable[[Path], str], flagged: Sequence[str]) -> dict[str, Any]:
    """Write the strip's thumbnails and return its rows for the template."""
    tag = safe_name(vd.variant)
    rows = [{"label": f"input ({vd.variant})", "cells": []}, {"label": "ground truth", "cells": []}]
    for t in frames:
        path = save_thumbnail(overlay(vd.frames[t], width=THUMB_WIDTH), out_dir / f"{tag}_input_{t:05d}.jpg")
        rows[0]["cells"].append({"src": rel(path), "alt": f"{video} {vd.variant} frame {t}", "worst": False, "jf": ""})
        path = save_thumbnail(overlay(vd.frames[t], vd.gt[t], width=THUMB_WIDTH), out_dir / f"{tag}_gt_{t:05d}.jpg")
        rows[1]["cells"].append({"src": rel(path), "alt": f"{video} ground truth frame {t}", "worst": False, "jf": ""})
    for method in methods:
        if method not in vd.masks:
            continue
        jf = vd.jf.get(method, {})
        worst = set(worst_frames(np.array(list(jf.values())), n_worst(len(jf)))) if jf else set()
        worst_t = {list(jf)[i] for i in worst}
        label = f"{method}{' (random-init!)' if method in flagged else ''} · J&F {pct(vd.video_jf.get(method, np.nan))}"
        cells = []
        for t in frames:
            if t not in vd.masks[method]:
                cells.append({"src": "", "alt": f"{method}: no mask saved for frame {t}", "worst": False, "jf": ""})
                continue
            lab = read_label_map(vd.masks[method][t])
            path = save_thumbnail(overlay(vd.frames[t], lab, width=THUMB_WIDTH),
                                  out_dir / f"{tag}_{safe_name(method)}_{t:05d}.jpg")
            cells.append({"src": rel(path), "alt": f"{video} {method} frame {t}", "worst": t in worst_t,
                          "jf": pct(jf[t]) if t in jf else ""})
        rows.append({"label": label, "cells": cells})
    return {"variant": vd.variant, "frames": [{"index": t, "name": vd.frame_names[t]} for t in frames], "rows": rows}


def _load(source: Source | None, variant: str, video: str) -> tuple[Any, str]:
    if source is None:
        return None, "no frames: the data is not available here"
    if variant not in source.variants:
        return None, f"no frames: {source.describe()} has no variant {variant}"
    try:
        return source.load(variant, video), ""
    except (OSError, KeyError, ValueError) as exc:
        return None, f"no frames: {exc}"


def make_pages(results: Results, tables: Tables, out: Path, render: Callable[..., str], *,
               source: Source | None, source_note: str = "", variant: str | None = None,
               videos: Sequence[str] | None = None, gallery_video: str | None = None,
               gallery_frame: int | None = None, data_label: str | None = None) -> tuple[list[dict], dict | None]:
    """Write ``videos/<video>.html`` (+ thumbnails, per-frame plot) for each video and ``gallery.html``.

    Returns ([{"name", "href"}], gallery {"href", "video", "caption"} or None) for the index page."""
    out = Path(out)
    flagged = list(tables.random_init_methods)
    grid = tables.grid
    chosen = variant or next((v for v in tables.variants if v != "clean"), None)
    pages = []
    methods = sorted(results.methods)
    for video in (videos or tables.videos):
        vdir = out / "videos" / safe_name(video)
        rel = lambda p: Path(p).relative_to(out / "videos").as_posix()  # noqa: E731 (pages sit in out/videos)
        strips, missing_masks, notes = [], [], []
        shown_variants = ["clean"] + ([chosen] if chosen and chosen != "clean" else [])
        plots = []
        for var in shown_variants:
            ok = grid[(grid.video == video) & (grid.variant == var) & (grid.status == "ok")]
            vd = VideoData(variant=var)
            video_obj, why = _load(source, var, video)
            curves = frame_curves(results, tables, video, var)
            for method, c in curves.items():
                pf = results.per_frame(method, var, video, int(c["seed"])) or {}
                names = list(video_obj.frame_names) if video_obj is not None else []
                vd.jf[method] = _frame_jf(c["variant"], pf.get("frames"), names) if names else {}
            for method, g in ok.groupby("method"):
                vd.video_jf[str(method)] = float(g.JF.mean())
            if video_obj is None:
                notes.append(f"{var}: {why}")
            else:
                vd.frames, vd.gt, vd.frame_names = video_obj.frames, video_obj.masks, list(video_obj.frame_names)
                for method in methods:
                    seeds = sorted(int(s) for s in ok[ok.method == method].seed)
                    if not seeds:
                        continue
                    found = saved_masks(results.root, method, var, video, seeds, vd.frame_names)
                    if found is None:
                        missing_masks.append({"method": method, "variant": var,
                                              "command": rerun_command(results.runs.get(method) or {}, method, var,
                                                                       video, results.root, data_label)})
                    else:
                        vd.seeds[method], vd.masks[method] = found
                extra = [list(vd.jf[m])[worst_frames(np.array(list(vd.jf[m].values())), 1)[0]]
                         for m in vd.masks if vd.jf.get(m)]
                frames = sample_frames(len(vd.frames), N_FRAMES, extra[:2])
                strips.append(_strip(vd, frames, vdir, video, methods, rel, flagged))
            fig = plot_frame_curves(curves, f"per-frame J&F: {video}, {var}", flagged, worst=N_WORST)
            if fig is not None:
                paths = save_figure(fig, vdir, f"per_frame_{safe_name(var)}")
                plots.append({"src": rel(paths["png"]), "svg": rel(paths["svg"]), "variant": var})
        page = render("video.html", video=video, strips=strips, plots=plots, notes=notes,
                      missing_masks=missing_masks, thumb_width=THUMB_WIDTH, thumb_quality=THUMB_QUALITY,
                      source_note=source_note, n_worst=N_WORST)
        path = out / "videos" / f"{safe_name(video)}.html"
        write_text_atomic(path, page)
        pages.append({"name": video, "href": path.relative_to(out).as_posix()})
    gallery = _gallery(out, render, source, gallery_video or (tables.videos[0] if tables.videos else None),
                       gallery_frame)
    return pages, gallery


def _gallery(out: Path, render: Callable[..., str], source: Source | None, video: str | None,
             frame: int | None) -> dict | None:
    """One frame of ``video`` under every variant of the source (the davis_c.show grid, as thumbnails)."""
    if source is None or video is None or video not in source.videos or len(source.variants) < 2:
        return None
    gdir = out / "gallery"
    cells: dict[str, dict[str, dict]] = {}
    t_used = None
    for var in source.variants:
        v = source.load(var, video)
        t = min(frame if frame is not None else len(v) // 2, len(v) - 1)
        t_used = t
        path = save_thumbnail(overlay(v.frames[t], width=THUMB_WIDTH), gdir / f"{safe_name(video)}_{safe_name(var)}.jpg")
        strength, _, corruption = var.partition("/")
        key = corruption or "clean"
        cells.setdefault(key, {})[strength if corruption else "clean"] = {
            "src": path.relative_to(out).as_posix(), "alt": f"{video} {var} frame {t}", "variant": var}
    strengths = [s for s in ("low", "med", "high") if any(s in c for c in cells.values())]
    strengths += sorted({s for c in cells.values() for s in c if s not in strengths and s != "clean"})
    rows = [{"name": name, "cells": [c.get(s) for s in (["clean"] if name == "clean" else strengths)]}
            for name, c in cells.items()]
    caption = (f"Frame {t_used} of {video} under every corruption and strength of {source.describe()} "
               f"(JPEG thumbnails, {THUMB_WIDTH} px wide, quality {THUMB_QUALITY}).")
    page = render("gallery.html", video=video, frame=t_used, strengths=strengths, rows=rows, caption=caption)
    write_text_atomic(out / "gallery.html", page)
    return {"href": "gallery.html", "video": video, "caption": caption}
