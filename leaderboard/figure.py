"""The paper's qualitative figure (DAVIS-C paper, Figure 1) from any results tree, and overlay videos.

    python -m leaderboard.figure --results results/ --video bike-packing --variant high/cartoon \\
        --methods stcn stcn+mcc --frames 0 25 50 75 --out figure.png figure.pdf

A grid with the frames in columns and one row each for the input (the variant's frame), optionally the
ground truth, and every method's masks drawn with :func:`leaderboard.overlay.overlay`; each method row is
labelled with its J&F on that video and variant. The masks are the PNGs ``harness.run --save-masks`` wrote;
frames and ground truth come from ``--data`` (default: the data the unit records name) through
``harness.data``. ``--video-out DIR`` writes MP4s of the same overlays over every frame (side by side, or one
per method) with the toolkit's ffmpeg (``common.ffmpeg.find_ffmpeg``: the one ``davis_c.build`` uses).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from common.atomic import TEMP_MARK, publish
from common.cli import cli_main, prog
from common.ffmpeg import FfmpegUnavailable, find_ffmpeg
from harness.results import read_json, read_run_json, unit_path
from leaderboard.overlay import overlay, read_label_map
from leaderboard.pages import rerun_command, safe_name, saved_masks
from leaderboard.results import ResultsError, load_results

__all__ = ["FigureError", "FigureRows", "load_rows", "make_figure", "write_figure", "write_videos", "main"]

#: frames per second of the overlay videos (the DAVIS frame rate, as the crf pipeline encodes)
VIDEO_FPS = 24
#: x264 quality of the overlay videos (ffmpeg's default CRF)
VIDEO_CRF = 23


class FigureError(ValueError):
    """The figure cannot be drawn as asked (no such video, no saved masks ...); the message says what to do."""


class FigureRows:
    """What a figure shows: the variant's frames and ground truth, and per method its label maps and J&F."""

    def __init__(self, video: str, variant: str, frames: np.ndarray, gt: np.ndarray, frame_names: list[str],
                 methods: dict[str, dict[int, np.ndarray]], jf: dict[str, float], seeds: dict[str, int]) -> None:
        self.video, self.variant, self.frames, self.gt = video, variant, frames, gt
        self.frame_names, self.methods, self.jf, self.seeds = frame_names, methods, jf, seeds


def _unit_jf(root: Path, method: str, variant: str, video: str, seed: int) -> float:
    try:
        rec = read_json(unit_path(root, method, variant, video, seed))
    except (OSError, ValueError):
        return float("nan")
    jf = rec.get("JF") if isinstance(rec, dict) and rec.get("status") == "ok" else None
    return float(jf) if jf is not None else float("nan")


def _seeds(root: Path, method: str, seed: int | None) -> list[int]:
    if seed is not None:
        return [seed]
    run = read_run_json(root, method) or {}
    return sorted(int(s) for s in run.get("seeds") or []) or [1]


def load_rows(results: str | Path, video: str, variant: str, methods: Sequence[str], *,
              data: str | Path | None = None, annotations: str | Path | None = None,
              frames: Sequence[int] | None = None, seed: int | None = None) -> FigureRows:
    """Frames, ground truth and every method's saved masks of ``frames`` (default: all) of one video/variant."""
    from leaderboard.pages import open_data

    root = Path(results)
    res = load_results(root)
    source, why = open_data(res, data, annotations)
    if source is None:
        raise FigureError(f"cannot read the frames: {why} (pass --data: the store or DAVIS root the runs used)")
    try:
        if video not in source.videos:
            raise FigureError(f"video {video!r} is not in {source.describe()} (it has: {', '.join(source.videos[:10])}"
                              + (" ..." if len(source.videos) > 10 else "") + ")")
        if variant not in source.variants:
            raise FigureError(f"variant {variant!r} is not in {source.describe()} (it has: "
                              + ", ".join(source.variants[:8]) + (" ..." if len(source.variants) > 8 else "") + ")")
        v = source.load(variant, video)
        data_label = str(data) if data else str(source.path)
    finally:
        source.close()
    names = list(v.frame_names)
    wanted = list(range(len(v))) if frames is None else [int(t) for t in frames]
    bad = [t for t in wanted if not 0 <= t < len(v)]
    if bad:
        raise FigureError(f"--frames {bad}: {video} has frames 0..{len(v) - 1}")
    out: dict[str, dict[int, np.ndarray]] = {}
    jf, seeds = {}, {}
    for method in methods:
        if not (root / method).is_dir():
            raise FigureError(f"method {method!r}: no folder {root / method} (methods here: "
                              + ", ".join(res.methods) + ")")
        found = saved_masks(root, method, variant, video, _seeds(root, method, seed), names)
        if found is None:
            cmd = rerun_command(res.runs.get(method) or {}, method, variant, video, root, data_label)
            raise FigureError(f"{method}: no masks saved for {variant}/{video} under {root / method}; "
                              f"write them with:\n  {cmd}")
        s, paths = found
        missing = [t for t in wanted if t not in paths]
        if missing:
            raise FigureError(f"{method}: no saved mask for frame(s) {missing} of {variant}/{video} (seed {s})")
        out[method] = {t: read_label_map(paths[t]) for t in wanted}
        seeds[method] = s
        jf[method] = _unit_jf(root, method, variant, video, s)
    return FigureRows(video, variant, v.frames, v.masks, names, out, jf, seeds)


def make_figure(rows: FigureRows, frames: Sequence[int], *, ground_truth: bool = False,
                panel_width: float = 2.2) -> Figure:
    """The grid: frames in columns; input, (ground truth,) one row per method; J&F in each method's label."""
    labels: list[tuple[str, list[np.ndarray]]] = [(f"input\n{rows.variant}", [overlay(rows.frames[t]) for t in frames])]
    if ground_truth:
        labels.append(("ground truth", [overlay(rows.frames[t], rows.gt[t]) for t in frames]))
    for method, maps in rows.methods.items():
        jf = rows.jf.get(method, float("nan"))
        label = f"{method}\nJ&F {100 * jf:.1f}" if np.isfinite(jf) else f"{method}\nJ&F n/a"
        labels.append((label, [overlay(rows.frames[t], maps[t]) for t in frames]))
    h, w = rows.frames.shape[1:3]
    ncols, nrows = len(frames), len(labels)
    fig = Figure(figsize=(0.9 + panel_width * ncols, 0.25 + panel_width * h / w * nrows + 0.3))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, (label, images) in enumerate(labels):
        for j, (t, img) in enumerate(zip(frames, images)):
            ax = axes[i, j]
            ax.imshow(img, interpolation="antialiased")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if i == 0:
                ax.set_title(f"frame {t}", fontsize=9)
            if j == 0:
                ax.set_ylabel(label, fontsize=9, rotation=0, ha="right", va="center", labelpad=6)
    fig.subplots_adjust(left=0.9 / fig.get_figwidth() + 0.02, right=0.99, top=1 - 0.35 / fig.get_figheight(),
                        bottom=0.01, wspace=0.03, hspace=0.04)
    return fig


def write_figure(fig: Figure, paths: Sequence[str | Path], dpi: int = 150) -> list[Path]:
    """Save ``fig`` to every path (format from the suffix: .png, .pdf, .svg), atomically; no date in PDF/SVG."""
    FigureCanvasAgg(fig)
    written = []
    for path in map(Path, paths):
        fmt = path.suffix.lstrip(".").lower()
        if fmt not in ("png", "pdf", "svg"):
            raise FigureError(f"--out {path}: use a .png, .pdf or .svg file name")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}{TEMP_MARK}.{fmt}")
        meta = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None},
                "svg": {"Date": None}}[fmt]
        with matplotlib.rc_context({"svg.hashsalt": "davis-c-figure"}):
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=meta)
        publish(tmp, path)
        written.append(path)
    return written


def _even(img: np.ndarray) -> np.ndarray:
    """Pad to even height and width (H.264 in yuv420p needs them)."""
    h, w = img.shape[:2]
    return np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _encode(path: Path, images: Sequence[np.ndarray], fps: int = VIDEO_FPS) -> Path:
    h, w = images[0].shape[:2]
    tmp = path.with_name(f".{path.name}{TEMP_MARK}.mp4")
    cmd = [find_ffmpeg(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "medium", "-crf", str(VIDEO_CRF),
           "-pix_fmt", "yuv420p", "-threads", "1", "-movflags", "+faststart", str(tmp)]
    data = b"".join(np.ascontiguousarray(im, dtype=np.uint8).tobytes() for im in images)
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True)
    except OSError as exc:
        raise FfmpegUnavailable(f"cannot run ffmpeg at {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise FigureError(f"ffmpeg failed writing {path}: {proc.stderr.decode(errors='replace').strip()[-500:]}")
    publish(tmp, path)
    return path


def write_videos(rows: FigureRows, out_dir: str | Path, *, layout: str = "side-by-side",
                 ground_truth: bool = True, width: int | None = None) -> list[Path]:
    """MP4 overlays over every frame: one side-by-side video (input | ground truth | methods ...) or one per
    method (``layout="per-method"``), named ``<video>_<variant>[_<method>].mp4``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = f"{safe_name(rows.video)}_{safe_name(rows.variant)}"
    n = len(rows.frames)
    if layout == "per-method":
        return [_encode(out_dir / f"{base}_{safe_name(m)}.mp4",
                        [_even(overlay(rows.frames[t], maps[t], width=width)) for t in range(n)])
                for m, maps in rows.methods.items()]
    if layout != "side-by-side":
        raise FigureError(f"--video-layout {layout!r}: side-by-side or per-method")
    images = []
    for t in range(n):
        panels = [overlay(rows.frames[t], width=width)]
        if ground_truth:
            panels.append(overlay(rows.frames[t], rows.gt[t], width=width))
        panels += [overlay(rows.frames[t], maps[t], width=width) for maps in rows.methods.values()]
        gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
        images.append(_even(np.concatenate([p for pair in zip(panels, [gap] * len(panels)) for p in pair][:-1], axis=1)))
    return [_encode(out_dir / f"{base}.mp4", images)]


@cli_main("leaderboard.figure", "files already written are complete; rerun to finish")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog("leaderboard.figure", "leaderboard-figure"),
        description="The paper's qualitative figure (Figure 1 of the DAVIS-C paper) from a results tree: frames in "
                    "columns; the input, (the ground truth,) and one row per method with its masks drawn on the "
                    "frames (DAVIS palette, fill + contour) and its J&F on that video in the row label. Masks come "
                    "from harness.run --save-masks; frames from --data (default: the data the results name).",
        epilog="examples:\n"
               "  python -m leaderboard.figure --results results/ --video bike-packing --variant high/cartoon \\\n"
               "      --methods stcn stcn+mcc --frames 0 25 50 75 --out figure.png figure.pdf\n"
               "  python -m leaderboard.figure --results results/ --video dog --variant clean --methods stcn \\\n"
               "      --video-out videos/                       # MP4: input | ground truth | stcn, every frame\n"
               "A method without saved masks is an error that prints the harness.run command writing them.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results"), help="results tree of harness.run (default: results/)")
    parser.add_argument("--video", required=True, help="video name, e.g. bike-packing")
    parser.add_argument("--variant", default="clean", help="clean or <strength>/<corruption>, e.g. high/cartoon (default: clean)")
    parser.add_argument("--methods", nargs="+", required=True, metavar="M", help="method folders of --results, one row each")
    parser.add_argument("--frames", nargs="+", type=int, metavar="T", help="frame indices, one column each "
                        "(default: 4 evenly spaced frames)")
    parser.add_argument("--seed", type=int, help="which seed's masks (default: the lowest seed with saved masks)")
    parser.add_argument("--data", type=Path, help="the store / DAVIS root the runs used (default: the data_path "
                        "the unit records name)")
    parser.add_argument("--annotations", type=Path, help="DAVIS root with the ground truth of a DAVIS-C folder tree --data")
    parser.add_argument("--ground-truth", action="store_true", help="add a ground-truth row under the input")
    parser.add_argument("--out", nargs="+", type=Path, metavar="FILE",
                        help="figure files, .png / .pdf / .svg (default: figure_<video>_<variant>.png and .pdf)")
    parser.add_argument("--dpi", type=int, default=150, help="resolution of PNG output (default 150)")
    parser.add_argument("--video-out", type=Path, metavar="DIR", help="also write MP4 overlay videos into DIR "
                        "(every frame; H.264 CRF 23, 24 fps, the toolkit's ffmpeg)")
    parser.add_argument("--video-layout", choices=["side-by-side", "per-method"], default="side-by-side",
                        help="one MP4 with input | ground truth | methods, or one MP4 per method (default side-by-side)")
    args = parser.parse_args(argv)
    try:
        rows = load_rows(args.results, args.video, args.variant, args.methods, data=args.data,
                         annotations=args.annotations, seed=args.seed,
                         frames=None if args.video_out else args.frames)
        n = len(rows.frames)
        frames = args.frames or sorted(set(np.linspace(0, n - 1, num=min(4, n)).round().astype(int).tolist()))
        bad = [t for t in frames if not 0 <= t < n]
        if bad:
            raise FigureError(f"--frames {bad}: {args.video} has frames 0..{n - 1}")
        base = f"figure_{safe_name(args.video)}_{safe_name(args.variant)}"
        outs = args.out or [Path(f"{base}.png"), Path(f"{base}.pdf")]
        written = write_figure(make_figure(rows, frames, ground_truth=args.ground_truth), outs, dpi=args.dpi)
        if args.video_out:
            written += write_videos(rows, args.video_out, layout=args.video_layout)
    except (FigureError, ResultsError, FfmpegUnavailable, ValueError) as exc:  # ValueError: harness.data.DataError
        print(f"leaderboard.figure: error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
