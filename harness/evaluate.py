"""Semi-supervised DAVIS-2017 evaluation of a results folder, reproducing the official script's CSV files.

Usage::

    python -m harness.evaluate --davis DAVIS --results results/osvos [--set val] [--out DIR]
                               [--per-frame per_frame.csv] [--workers 4]

``--results`` holds one folder per video with one palette PNG per frame (``<video>/00017.png``), the layout
the official ``evaluation_method.py --task semi-supervised`` reads.  Written to ``--out`` (default: the
results folder, as the official script does):

* ``global_results-<set>.csv`` and ``per-sequence_results-<set>.csv``: byte-for-byte what the official
  script writes (one row per *object* ``<video>_<id>``, 3 decimals);
* ``davis_c_per-video_results-<set>.csv``: our addition (the official toolkit has none): J&F, J and F per
  video = mean over the video's objects;
* with ``--per-frame FILE``: one row per (video, object, frame) with full-precision J and F.

Unlike the official script, existing CSV files are never re-used (they are replaced, atomically), and bad
predictions (a label above the number of objects, a missing or mis-sized frame) stop with an error naming
the video and frame instead of a silent exit with status 0.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from common.atomic import write_text_atomic
from common.cli import cli_main, prog
from davis_c.davis import DavisDataset, DavisError, check_video_name, no_object_message
from davis_c.masks import read_mask
from harness.metrics import STAT_NAMES, EvaluationError, VideoScores, score_frame
from harness.protocols import evaluate_sequence  # the one scoring home (harness.protocols)

__all__ = ["evaluate_results", "evaluate_sequence", "global_scores", "write_official_csvs", "write_per_video_csv",
           "write_per_frame_csv", "main", "GLOBAL_COLUMNS"]

GLOBAL_COLUMNS = ("J&F-Mean",) + STAT_NAMES
VOID_LABEL = 255


@dataclass(frozen=True)
class _Job:
    root: str
    image_set: str
    resolution: str
    results: str
    video: str
    bound_th: float


def _run_job(job: _Job) -> VideoScores:
    ds = DavisDataset(job.root, job.image_set, job.resolution)
    return evaluate_sequence(ds, job.results, job.video, job.bound_th)


def _warm_up() -> None:
    """Compile (or load from cache) the numba kernels once, before worker processes are forked."""
    tiny = np.zeros((4, 4), np.uint8)
    tiny[1:3, 1:3] = 1
    score_frame(tiny, tiny, (1,), 1.0)


def evaluate_results(davis_root: str | os.PathLike, results_dir: str | os.PathLike, *, image_set: str = "val",
                     resolution: str = "480p", workers: int = 1, bound_th: float = 0.008,
                     videos: Sequence[str] | None = None, progress: bool = True) -> list[VideoScores]:
    """Evaluate every video of ``ImageSets/2017/<image_set>.txt`` (in that order); ``workers`` processes
    score videos in parallel.  Returns one :class:`VideoScores` per video."""
    ds = DavisDataset(davis_root, image_set, resolution)
    names = list(ds.videos if videos is None else videos)
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise EvaluationError(f"results folder not found: {results_dir}")
    jobs = [_Job(str(ds.root), image_set, resolution, str(results_dir), v, bound_th) for v in names]
    _warm_up()
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="evaluating", unit="video", disable=not progress, file=sys.stderr)
    out: list[VideoScores] = []
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                out.append(_run_job(job))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
                for res in pool.map(_run_job, jobs):
                    out.append(res)
                    bar.update()
    finally:
        bar.close()
    return out


def global_scores(scores: Iterable[VideoScores]) -> np.ndarray:
    """The official global row: column means over all objects of all videos; J&F = (J-Mean + F-Mean) / 2."""
    stats = np.concatenate([s.stats for s in scores], axis=0)
    cols = [list(stats[:, i]) for i in range(6)]
    means = [np.mean(c) for c in cols]  # same reduction as the official script (np.mean of the list)
    return np.array([(means[0] + means[3]) / 2.0] + means, dtype=np.float64)


def _atomic_write(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def official_csv_names(image_set: str) -> tuple[str, str]:
    return f"global_results-{image_set}.csv", f"per-sequence_results-{image_set}.csv"


def write_official_csvs(scores: Sequence[VideoScores], out_dir: str | os.PathLike,
                        image_set: str = "val") -> tuple[Path, Path]:
    """Write the two files of the official ``evaluation_method.py`` (same columns, order and %.3f format)."""
    out_dir = Path(out_dir)
    g_name, s_name = official_csv_names(image_set)
    g = global_scores(scores)
    g_text = ",".join(GLOBAL_COLUMNS) + "\n" + ",".join("%.3f" % v for v in g) + "\n"
    rows = ["Sequence,J-Mean,F-Mean"]
    for s in scores:
        for name, st in zip(s.object_names, s.stats):
            rows.append("%s,%.3f,%.3f" % (name, st[0], st[3]))
    _atomic_write(out_dir / g_name, g_text)
    _atomic_write(out_dir / s_name, "\n".join(rows) + "\n")
    return out_dir / g_name, out_dir / s_name


def per_video_csv_name(image_set: str) -> str:
    return f"davis_c_per-video_results-{image_set}.csv"


def write_per_video_csv(scores: Sequence[VideoScores], path: str | os.PathLike) -> Path:
    """Our per-video table (not an official output): J&F, J, F = mean over the video's objects."""
    rows = ["Video,J&F-Mean,J-Mean,F-Mean,Objects"]
    for s in scores:
        rows.append("%s,%.3f,%.3f,%.3f,%d" % (s.name, s.jf_mean, s.j_mean, s.f_mean, len(s.object_ids)))
    _atomic_write(Path(path), "\n".join(rows) + "\n")
    return Path(path)


def write_per_frame_csv(scores: Sequence[VideoScores], path: str | os.PathLike) -> Path:
    """One row per (video, object, evaluated frame) with full-precision (round-trip) J and F."""
    rows = ["video,object,frame,J,F"]
    for s in scores:
        names = [s.frame_names[t] if s.frame_names else f"{t:05d}" for t in s.frames]
        for oi, k in enumerate(s.object_ids):
            for n, frame in enumerate(names):
                rows.append(f"{s.name},{k},{frame},{float(s.J[oi, n])!r},{float(s.F[oi, n])!r}")
    _atomic_write(Path(path), "\n".join(rows) + "\n")
    return Path(path)


def _print_tables(scores: Sequence[VideoScores], image_set: str) -> None:
    import pandas as pd

    g = pd.DataFrame([global_scores(scores)], columns=list(GLOBAL_COLUMNS))
    seq = pd.DataFrame([(n, st[0], st[3]) for s in scores for n, st in zip(s.object_names, s.stats)],
                       columns=["Sequence", "J-Mean", "F-Mean"])
    vid = pd.DataFrame([(s.name, s.jf_mean, s.j_mean, s.f_mean) for s in scores],
                       columns=["Video", "J&F-Mean", "J-Mean", "F-Mean"])
    fmt = {"float_format": "{:.3f}".format, "index": False}
    print(f"--------------------------- Global results for {image_set} ---------------------------")
    print(g.to_string(**fmt))
    print(f"\n---------- Per sequence results for {image_set} ----------")
    print(seq.to_string(**fmt))
    print(f"\n---------- Per video results for {image_set} (davis_c; not an official output) ----------")
    print(vid.to_string(**fmt))


@cli_main("harness.evaluate", "no CSV file of this run was written")
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog("harness.evaluate", "harness-evaluate"),
        description="Semi-supervised DAVIS-2017 J&F evaluation of a results folder (<video>/<frame>.png), "
                    "numerically identical to the official davis2017-evaluation toolkit and writing the same "
                    "CSV files (never re-using old ones).")
    parser.add_argument("--davis", required=True, type=Path,
                        help="DAVIS root holding Annotations/ and ImageSets/ (JPEGImages/ is not needed)")
    parser.add_argument("--results", required=True, type=Path,
                        help="folder with one sub-folder of palette PNGs per video")
    parser.add_argument("--set", default="val", dest="image_set", help="image set (default: val)")
    parser.add_argument("--resolution", default="480p", choices=["480p", "Full-Resolution"],
                        help="annotation resolution (default: 480p, as the official evaluation)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the CSV files (default: the results folder, as the official script)")
    parser.add_argument("--per-frame", type=Path, default=None, metavar="FILE.csv",
                        help="also write one row per (video, object, frame) with full-precision J and F")
    parser.add_argument("--videos", nargs="+", metavar="NAME",
                        help="only these videos of the image set (names or globs such as 'b*'; default: all); "
                             "the CSVs then hold just them")
    parser.add_argument("--workers", type=int, default=1, help="processes scoring videos in parallel (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no tables")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    out_dir = args.out if args.out is not None else args.results
    start = time.time()
    stale = [out_dir / n for n in official_csv_names(args.image_set) + (per_video_csv_name(args.image_set),)]
    for path in stale:  # an old result must never be mistaken for this run's, even if this run fails
        if path.is_file():
            path.unlink()
            if not args.quiet:
                print(f"removed old {path} (it is recomputed)", file=sys.stderr)
    try:
        videos = None
        if args.videos:
            import fnmatch

            known = DavisDataset(args.davis, args.image_set, args.resolution).videos
            videos = [v for v in known if any(fnmatch.fnmatchcase(v, pat) for pat in args.videos)]
            unmatched = [pat for pat in args.videos if not any(fnmatch.fnmatchcase(v, pat) for v in known)]
            if unmatched:
                raise EvaluationError(f"--videos {' '.join(unmatched)}: not in the {args.image_set!r} image set "
                                      f"of {args.davis} (it has {', '.join(known)})")
        scores = evaluate_results(args.davis, args.results, image_set=args.image_set, resolution=args.resolution,
                                  workers=args.workers, videos=videos, progress=not args.quiet)
    except (DavisError, EvaluationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    g_path, s_path = write_official_csvs(scores, out_dir, args.image_set)
    v_path = write_per_video_csv(scores, out_dir / per_video_csv_name(args.image_set))
    written = [g_path, s_path, v_path]
    if args.per_frame is not None:
        written.append(write_per_frame_csv(scores, args.per_frame))
    if not args.quiet:
        _print_tables(scores, args.image_set)
        print()
    for p in written:
        print(f"wrote {p}")
    n_fo = sum(s.J.size for s in scores)
    print(f"{len(scores)} videos, {n_fo} frame-objects in {time.time() - start:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
