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
import csv
import io
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from common.atomic import write_text_atomic
from common.cli import cli_main, prog
from common.workers import exit_with_parent, stop_pool
from harness.devices import check_workers
from davis_c.datasets import Davis2017
from davis_c.davis import DavisError
from harness.metrics import STAT_NAMES, EvaluationError, ObjectStats, VideoScores
from harness.protocols import evaluate_sequence, open_reader, score_folder, warm_up  # the one scoring home

__all__ = ["evaluate_results", "evaluate_sequence", "global_scores", "write_official_csvs", "write_per_video_csv",
           "write_per_frame_csv", "main", "GLOBAL_COLUMNS"]

GLOBAL_COLUMNS = ("J&F-Mean",) + STAT_NAMES


@dataclass(frozen=True)
class _Job:
    root: str
    image_set: str
    resolution: str
    results: str
    video: str
    bound_th: float
    dataset: str = "davis2017"
    split: str | None = None


@dataclass
class RecordScores(ObjectStats):
    """One video scored by another benchmark's rules (``harness.protocols.score_folder``): the per-object
    statistics as :class:`harness.metrics.VideoScores` has them, and each object's scored frames."""

    name: str
    object_ids: tuple[int, ...]
    stats: np.ndarray                                   # (K, 6) as VideoScores.stats
    per_object: dict[int, tuple[list[str], list[float], list[float]]]

    @classmethod
    def from_fields(cls, name: str, fields: dict) -> "RecordScores":
        objs = fields["objects"]
        stats = np.array([[o["J"], o["J_recall"], o["J_decay"], o["F"], o["F_recall"], o["F_decay"]] for o in objs],
                         dtype=np.float64).reshape(len(objs), 6)
        per: dict[int, tuple[list[str], list[float], list[float]]] = {}
        pf = fields.get("per_frame")
        if pf:
            for i, o in enumerate(objs):
                per[o["id"]] = (list(pf["frames"]), list(pf["J"][i]), list(pf["F"][i]))
        for o, v in (fields.get("per_object_frames") or {}).items():
            per[int(o)] = (list(v["frames"]), list(v["J"]), list(v["F"]))
        return cls(name, tuple(int(o["id"]) for o in objs), stats, per)

    @property
    def n_frame_objects(self) -> int:
        return sum(len(v[0]) for v in self.per_object.values())

    def frame_rows(self) -> list[tuple]:
        return [(self.name, k, frame, repr(float(j)), repr(float(f)))
                for k in self.object_ids for frame, j, f in zip(*self.per_object.get(k, ([], [], [])))]


def _run_job(job: _Job) -> VideoScores | RecordScores:
    if job.dataset == "davis2017":
        ds = Davis2017(job.root, job.image_set, job.resolution)
        return evaluate_sequence(ds, job.results, job.video, job.bound_th)
    reader = open_reader(job.root, job.dataset, split=job.split)
    return RecordScores.from_fields(job.video, score_folder(reader, job.video, Path(job.results) / job.video))


_warm_up = warm_up  # kept for callers of the old name


def evaluate_results(davis_root: str | os.PathLike, results_dir: str | os.PathLike, *, image_set: str = "val",
                     resolution: str = "480p", workers: int = 1, bound_th: float = 0.008,
                     videos: Sequence[str] | None = None, progress: bool = True, dataset: str | None = None,
                     split: str | None = None) -> list[VideoScores]:
    """Evaluate every video of the image set / split (in its order); ``workers`` processes score videos in
    parallel.  Returns one :class:`VideoScores` (DAVIS-2017) or :class:`RecordScores` per video.

    ``dataset`` (default: recognised from the root's layout as ``harness.run`` does, else DAVIS-2017) picks
    the benchmark and with it the scoring rules (``harness.protocols``)."""

    reader = open_reader(davis_root, dataset, image_set=image_set, resolution=resolution, split=split)
    ds_name = "davis2017" if isinstance(reader, Davis2017) else reader.name
    if ds_name != "davis2017" and not reader.scored_locally:
        raise EvaluationError(f"{reader.label}: the ground truth of this split is private; it cannot be scored "
                              "locally (harness.submission packs predictions for its server)")
    names = list(reader.videos if videos is None else videos)
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise EvaluationError(f"results folder not found: {results_dir}")
    root = str(reader.root) if hasattr(reader, "root") else str(davis_root)
    jobs = [_Job(root, image_set, resolution, str(results_dir), v, bound_th, ds_name,
                 None if ds_name == "davis2017" else reader.split) for v in names]
    try:
        n_workers = check_workers(workers, len(jobs), lambda m: print(m, file=sys.stderr))
    except ValueError as exc:
        raise EvaluationError(str(exc)) from exc
    _warm_up()
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="evaluating", unit="video", disable=not progress, file=sys.stderr)
    out: list = []
    try:
        if n_workers <= 1:
            for job in jobs:
                out.append(_run_job(job))
                bar.update()
        else:
            pool = ProcessPoolExecutor(max_workers=n_workers, initializer=exit_with_parent, initargs=(os.getpid(),))
            try:
                for res in pool.map(_run_job, jobs):
                    out.append(res)
                    bar.update()
            except BaseException:  # Ctrl-C, SIGTERM, a dead worker: end the workers now (common.workers)
                stop_pool(pool)
                raise
            pool.shutdown(wait=True)
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
    rows = [("Sequence", "J-Mean", "F-Mean")]
    for s in scores:
        for name, st in zip(s.object_names, s.stats):
            rows.append((name, "%.3f" % st[0], "%.3f" % st[3]))
    _atomic_write(out_dir / g_name, g_text)
    _atomic_write(out_dir / s_name, _csv_text(rows))
    return out_dir / g_name, out_dir / s_name


def per_video_csv_name(image_set: str) -> str:
    return f"davis_c_per-video_results-{image_set}.csv"


def _csv_text(rows: Iterable[Sequence]) -> str:
    """CSV with proper quoting (a video named ``a,b"c`` stays one field), ``\n`` line ends: for names
    without special characters the same bytes as plain joining."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(rows)
    return buf.getvalue()


def _video_row(s) -> tuple[str, float, float, float, int]:
    """(name, J&F, J, F, objects) of a ``VideoScores`` or of unit-record score fields (``VideoFields``)."""
    return s.name, s.jf_mean, s.j_mean, s.f_mean, len(s.object_ids)


def write_per_video_csv(scores: Sequence[VideoScores], path: str | os.PathLike) -> Path:
    """Our per-video table (not an official output): J&F, J, F = mean over the video's objects."""
    rows = [("Video", "J&F-Mean", "J-Mean", "F-Mean", "Objects")]
    for s in scores:
        name, jf, j, f, k = _video_row(s)
        rows.append((name, "%.3f" % jf, "%.3f" % j, "%.3f" % f, k))
    _atomic_write(Path(path), _csv_text(rows))
    return Path(path)


def write_per_frame_csv(scores: Sequence[VideoScores], path: str | os.PathLike) -> Path:
    """One row per (video, object, evaluated frame) with full-precision (round-trip) J and F."""
    rows: list[tuple] = [("video", "object", "frame", "J", "F")]
    for s in scores:
        if isinstance(s, RecordScores):
            rows.extend(s.frame_rows())
            continue
        names = [s.frame_names[t] if s.frame_names else f"{t:05d}" for t in s.frames]
        for oi, k in enumerate(s.object_ids):
            for n, frame in enumerate(names):
                rows.append((s.name, k, frame, repr(float(s.J[oi, n])), repr(float(s.F[oi, n]))))
    _atomic_write(Path(path), _csv_text(rows))
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
                        help="DAVIS root holding Annotations/ and ImageSets/ (JPEGImages/ is not needed), or the "
                             "root of any benchmark harness.run reads (--dataset)")
    parser.add_argument("--dataset", metavar="NAME",
                        help="benchmark of --davis: davis2017 (default), davis2016, youtube-vos, mose, lvos, sav; "
                             "DAVIS-2016 and SA-V are recognised from their layout, as harness.run does; each is "
                             "scored by its own rules (harness.protocols)")
    parser.add_argument("--split", metavar="SPLIT", help="the dataset's split (default: its evaluation split; "
                        "DAVIS-2017: --set)")
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

            known = open_reader(args.davis, args.dataset, image_set=args.image_set, resolution=args.resolution,
                                split=args.split).videos
            videos = [v for v in known if any(fnmatch.fnmatchcase(v, pat) for pat in args.videos)]
            unmatched = [pat for pat in args.videos if not any(fnmatch.fnmatchcase(v, pat) for v in known)]
            if unmatched:
                raise EvaluationError(f"--videos {' '.join(unmatched)}: not in the {args.image_set!r} image set "
                                      f"of {args.davis} (it has {', '.join(known)})")
        scores = evaluate_results(args.davis, args.results, image_set=args.image_set, resolution=args.resolution,
                                  workers=args.workers, videos=videos, progress=not args.quiet,
                                  dataset=args.dataset, split=args.split)
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
    n_fo = sum(s.J.size if isinstance(s, VideoScores) else s.n_frame_objects for s in scores)
    print(f"{len(scores)} videos, {n_fo} frame-objects in {time.time() - start:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
