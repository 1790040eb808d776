"""Score masks made by any other tool and write them as harness results: ``python -m harness.score``.

    python -m harness.score --predictions cutie_out/ --method cutie --annotations DAVIS \
        --source "cutie eval_vos.py, commit 1a2b3c"

The predictions are palette PNGs (``<video>/<frame>.png``, object ids as pixel values, as the official
DAVIS evaluation reads them) in one of two tree layouts:

* **DAVIS-C layout** (what the official DAVIS-C scripts and most VOS repositories write when run on each
  variant)::

      TREE/clean/<video>/<frame>.png                       (or --clean DIR holding <video>/<frame>.png)
      TREE/<strength>/<corruption>/<video>/<frame>.png     strength: low, med, high

  several seeds as ``TREE/seed<k>/`` (each a tree of this layout, ``--clean DIR`` then also holds
  ``seed<k>/``);
* **harness layout** (what ``harness.run --save-masks`` writes for one method)::

      TREE/<variant>/<video>/seed<k>/<frame>.png

Every (variant, video, seed) is scored with the evaluator of ``harness.evaluate`` (same rules, same errors:
a missing frame, a mask of the wrong size, an RGB mask or a label above the number of objects fails that
unit with the file named, and the run goes on) and written as a ``davis-c-unit/1`` record under
``--out/<method>/``, exactly where ``harness.run`` writes its own, so ``leaderboard.build`` shows the method
next to ours. Only ``Annotations/`` and ``ImageSets/`` of the DAVIS root are read. Rerunning skips finished
units and retries failed ones; the exit status is 1 while any unit has failed.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from common.cli import prog
from davis_c.davis import DavisDataset, check_video_name
from common.errors import DavisError
from harness.results import (RunMismatch, UNIT_SCHEMA, remove_stale_temps, unit_path, unit_status,
                             write_json_atomic, write_run_json)

__all__ = ["ScoreError", "PredictionTree", "find_predictions", "score_unit", "score_predictions", "main",
           "IMPORTED_MODEL"]

STRENGTHS = ("low", "med", "high")
CLEAN = "clean"
#: the ``model`` recorded in run.json for imported predictions (no model of this toolkit ran).
IMPORTED_MODEL = "imported"
_SEED = re.compile(r"^seed(-?\d+)$")


class ScoreError(ValueError):
    """A problem found before any unit is scored (tree layout, annotations, arguments)."""


@dataclass
class PredictionTree:
    """Where the masks of every (variant, seed) are: ``folder(variant, video, seed)``."""

    layout: str                                     # "davis-c" or "harness"
    roots: dict[tuple[str, int], tuple[Path, str]]  # (variant, seed) -> (folder of video folders, per-video suffix)

    @property
    def variants(self) -> list[str]:
        return _ordered(dict.fromkeys(v for v, _ in self.roots))

    def seeds(self) -> list[int]:
        return sorted({s for _, s in self.roots})

    def folder(self, variant: str, video: str, seed: int) -> Path:
        root, suffix = self.roots[(variant, seed)]
        return root / video / suffix if suffix else root / video


def _ordered(variants) -> list[str]:
    def key(v: str) -> tuple[int, str]:
        if v == CLEAN:
            return (0, "")
        s, c = v.split("/")
        return (1 + STRENGTHS.index(s), c)
    return sorted(variants, key=key)


def _dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")) if path.is_dir() else []


def _variant_roots(tree: Path) -> dict[str, Path]:
    """``clean`` and ``<strength>/<corruption>`` folders directly under ``tree``."""
    out: dict[str, Path] = {}
    if (tree / CLEAN).is_dir():
        out[CLEAN] = tree / CLEAN
    for strength in STRENGTHS:
        for cdir in _dirs(tree / strength):
            out[f"{strength}/{cdir.name}"] = cdir
    return out


def _seed_dirs(path: Path) -> dict[int, Path]:
    return {int(m.group(1)): d for d in _dirs(path) if (m := _SEED.match(d.name))}


def find_predictions(tree: str | Path, clean: str | Path | None = None, seeds: Sequence[int] | None = None) -> PredictionTree:
    """Work out the layout of a predictions tree (module docstring) and where each (variant, seed) lives.

    ``seeds`` is the seed to record for a tree without ``seed<k>`` folders (default 1); with seed folders
    it selects among them.
    """
    tree = Path(tree)
    if not tree.is_dir():
        raise ScoreError(f"--predictions {tree}: folder not found")
    roots: dict[tuple[str, int], tuple[Path, str]] = {}
    top_seeds = _seed_dirs(tree)
    if top_seeds:  # DAVIS-C layout, one tree per seed
        layout = "davis-c"
        clean_seeds = _seed_dirs(Path(clean)) if clean is not None else {}
        for seed, sdir in top_seeds.items():
            for variant, root in _variant_roots(sdir).items():
                roots[(variant, seed)] = (root, "")
            if clean is not None:
                if seed not in clean_seeds:
                    raise ScoreError(f"--clean {clean}: the predictions have seed folders, so --clean needs "
                                     f"seed{seed}/ too (found: {', '.join(d.name for d in _dirs(Path(clean)))})")
                roots[(CLEAN, seed)] = (clean_seeds[seed], "")
    else:
        variants = _variant_roots(tree)
        harness_layout = any(_seed_dirs(v) for root in variants.values() for v in _dirs(root)[:3])
        layout = "harness" if harness_layout else "davis-c"
        default_seed = list(seeds)[0] if seeds else 1
        if not harness_layout and seeds and len(seeds) > 1:
            raise ScoreError(f"--seeds {' '.join(map(str, seeds))}: {tree} has no seed<k>/ folders, so it holds "
                             "the masks of one seed; give one seed, or put each seed's tree in seed<k>/")
        if clean is not None:
            if not Path(clean).is_dir():
                raise ScoreError(f"--clean {clean}: folder not found")
            variants[CLEAN] = Path(clean)
        for variant, root in variants.items():
            if harness_layout:
                found = sorted({s for v in _dirs(root) for s in _seed_dirs(v)})
                for seed in found:
                    roots[(variant, seed)] = (root, f"seed{seed}")
            else:
                roots[(variant, default_seed)] = (root, "")
    if seeds is not None and (top_seeds or layout == "harness"):
        roots = {k: v for k, v in roots.items() if k[1] in set(seeds)}
    if not roots:
        raise ScoreError(f"--predictions {tree}: no predictions found; expected clean/<video>/<frame>.png and/or "
                         "<strength>/<corruption>/<video>/<frame>.png (strength low, med or high), optionally in "
                         "seed<k>/ folders, or the layout of harness.run --save-masks "
                         "(<variant>/<video>/seed<k>/<frame>.png)")
    return PredictionTree(layout=layout, roots=roots)


@dataclass(frozen=True)
class _Job:
    annotations: str
    image_set: str
    resolution: str
    method: str
    variant: str
    video: str
    seed: int
    pred_dir: str
    out: str


def _base(job: _Job) -> dict:
    strength, corruption = (None, None) if job.variant == CLEAN else job.variant.split("/")
    return {"schema": UNIT_SCHEMA, "method": job.method, "variant": job.variant, "strength": strength,
            "corruption": corruption, "video": job.video, "seed": job.seed, "status": "ok", "error": None,
            "random_init": False, "objects": [], "J": None, "F": None, "JF": None, "n_frames": None,
            "per_frame": None, "timing": None, "peak_memory_mb": None, "predictions": job.pred_dir}


def score_unit(job: _Job) -> dict:
    """Score one unit with ``harness.evaluate.evaluate_sequence`` and write its record (ok or failed)."""
    from harness.evaluate import evaluate_sequence
    from harness.executor import unit_scores
    from harness.metrics import EvaluationError

    path = unit_path(job.out, job.method, job.variant, job.video, job.seed)
    remove_stale_temps(path)
    record = _base(job)
    try:
        ds = DavisDataset(job.annotations, job.image_set, job.resolution)
        res = evaluate_sequence(ds, job.pred_dir, job.video, pred_dir=job.pred_dir)
        record.update(unit_scores(res))
        record["n_frames"] = len(res.frame_names or [])
    except (DavisError, EvaluationError, OSError, ValueError) as exc:
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    write_json_atomic(path, record)
    return record


def _warm_up() -> None:
    from harness.evaluate import _warm_up as warm

    warm()


def _toolkit_version() -> str:
    import davis_c

    return getattr(davis_c, "__version__", "unknown")


def _reference_fields(method: str, paper_name: str | None) -> dict:
    """paper_name / published of the shipped preset of the same name (so e.g. ``--method stcn`` is compared
    with the paper's STCN row), unless ``--paper-name`` says otherwise."""
    from harness.methods import MethodError, load_method

    fields = {"paper_name": None, "published": []}
    try:
        _, cfg = load_method(method)
        fields = {"paper_name": cfg.get("paper_name"), "published": cfg.get("published") or []}
    except MethodError:
        pass
    if paper_name is not None:
        fields["paper_name"] = paper_name or None
    return fields


def score_predictions(predictions: str | Path, method: str, annotations: str | Path, *, out: str | Path = "results",
                      clean: str | Path | None = None, data: str | Path | None = None,
                      seeds: Sequence[int] | None = None, videos: Sequence[str] | None = None,
                      image_set: str = "val", resolution: str = "480p", workers: int = 1,
                      source: str | None = None, paper_name: str | None = None, progress: bool = True,
                      notify: Callable[[str], None] = print) -> list[dict]:
    """Score every unit of a predictions tree not already scored ok; returns the records of all its units."""
    check_video_name(method, "--method")
    try:
        ds = DavisDataset(annotations, image_set, resolution)
    except DavisError as exc:
        raise ScoreError(f"--annotations: {exc}") from exc
    tree = find_predictions(predictions, clean, seeds)
    all_videos = list(ds.videos)
    if videos:
        unknown = [v for v in videos if v not in all_videos]
        if unknown:
            raise ScoreError(f"--videos {', '.join(unknown)}: not in {ds.set_file}")
        all_videos = [v for v in all_videos if v in set(videos)]
    planned_variants = tree.variants
    if data is not None:
        from harness.data import DataError, open_source

        try:
            with open_source(data, annotations) as src:
                planned_variants = list(src.variants)
        except DataError as exc:
            raise ScoreError(str(exc)) from exc
        absent = [v for v in planned_variants if v not in tree.variants]
        if absent:
            notify(f"note: {len(absent)} variant(s) of {data} have no predictions in {predictions} and stay missing "
                   f"in the leaderboard: {', '.join(absent[:6])}{' ...' if len(absent) > 6 else ''}")
        extra = [v for v in tree.variants if v not in planned_variants]
        if extra:
            raise ScoreError(f"--predictions {predictions}: variant(s) {', '.join(extra)} are not in {data}")
    for variant in tree.variants:  # a prediction folder for a video outside the image set is ignored, said once
        stray = sorted({p.name for s in tree.seeds() if (variant, s) in tree.roots
                        for p in _dirs(tree.roots[(variant, s)][0])} - set(ds.videos))
        if stray:
            notify(f"note: {variant}: folder(s) {', '.join(stray[:5])} are not videos of {ds.set_file}; ignored")
    fields = _reference_fields(method, paper_name)
    config = {"description": "predictions made by another tool, scored with harness.score (see run.json imported)",
              "model": IMPORTED_MODEL, **fields}
    info = {"method": method, "config": config, "toolkit_version": _toolkit_version(), "checkpoint": None,
            "checkpoint_sha256": None, "random_init": False, "device": "n/a (imported predictions)",
            "seeds": tree.seeds(), "variants": planned_variants, "videos": all_videos,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "imported": {"tool": "harness.score", "source": source, "predictions": str(Path(predictions).resolve()),
                         "layout": tree.layout}}
    write_run_json(out, method, info)
    jobs = [_Job(str(annotations), image_set, resolution, method, variant, video, seed,
                 str(tree.folder(variant, video, seed)), str(out))
            for variant in tree.variants for seed in tree.seeds() if (variant, seed) in tree.roots
            for video in all_videos]
    todo = [j for j in jobs if unit_status(unit_path(out, j.method, j.variant, j.video, j.seed)) != "ok"]
    notify(f"{method}: {len(jobs)} unit(s) ({tree.layout} layout, {len(tree.variants)} variant(s), "
           f"{len(all_videos)} video(s), seed(s) {' '.join(map(str, tree.seeds()))}); "
           f"{len(jobs) - len(todo)} done, {len(todo)} to score -> {out}")
    from tqdm import tqdm

    _warm_up()
    bar = tqdm(total=len(todo), unit="unit", desc=method, disable=not progress or not todo, file=sys.stderr)
    try:
        if workers <= 1 or len(todo) <= 1:
            for job in todo:
                score_unit(job)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for _ in pool.map(score_unit, todo, chunksize=4):
                    bar.update()
    finally:
        bar.close()
    from harness.results import read_unit

    return [read_unit(unit_path(out, j.method, j.variant, j.video, j.seed)) for j in jobs]


EPILOG = """examples:
  # masks of another tool in the DAVIS-C layout (clean/ and low|med|high/<corruption>/), one seed
  harness-score --predictions cutie_davisc/ --method cutie --annotations DAVIS --source "cutie eval_vos.py, commit 1a2b3c"
  # the clean run elsewhere, in DAVIS results layout (<video>/<frame>.png)
  harness-score --predictions sam2_davisc/ --clean sam2_davis17/ --method sam2 --annotations DAVIS
  # re-score what harness.run --save-masks wrote (harness layout: <variant>/<video>/seed<k>/)
  harness-score --predictions results/stcn --method stcn-rescored --annotations DAVIS --out rescored/
then: leaderboard-build --results results/ --out leaderboard_out/
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog("harness.score", "harness-score"),
        description="Score the masks of any VOS tool on DAVIS / DAVIS-C with the official J&F and write them as "
                    "harness unit records (davis-c-unit/1) under --out/<method>/, so leaderboard.build shows the "
                    "method next to ours. Needs only Annotations/ and ImageSets/ of the DAVIS root. Rerunning "
                    "skips finished units; exit status 1 while any unit failed (the report names the file).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--predictions", required=True, metavar="TREE",
                   help="predicted palette PNGs: clean/<video>/ and <strength>/<corruption>/<video>/ (optionally in "
                        "seed<k>/ folders), or the harness.run --save-masks layout <variant>/<video>/seed<k>/")
    p.add_argument("--method", required=True, metavar="NAME",
                   help="name of the method in the results tree and the leaderboard (a shipped preset's name, e.g. "
                        "stcn, also brings its paper row and published numbers)")
    p.add_argument("--annotations", required=True, metavar="DAVIS_ROOT",
                   help="DAVIS root with Annotations/<resolution>/ and ImageSets/2017/<set>.txt (the ground truth; "
                        "also of every DAVIS-C variant)")
    p.add_argument("--clean", metavar="DIR", help="the clean predictions in DAVIS results layout (<video>/<frame>.png), "
                   "if they are not in TREE/clean/")
    p.add_argument("--data", metavar="PATH", help="the DAVIS-C benchmark (HDF5 or folder tree): every variant it holds "
                   "is expected, so variants without predictions show as missing in the leaderboard "
                   "(default: expect the variants found in TREE)")
    p.add_argument("--seeds", nargs="+", type=int, metavar="S",
                   help="seed recorded for a tree without seed<k>/ folders (default 1); with seed folders, which to score")
    p.add_argument("--videos", nargs="+", metavar="NAME", help="score only these videos (default: the whole image set)")
    p.add_argument("--set", default="val", dest="image_set", help="image set (default: val)")
    p.add_argument("--resolution", default="480p", choices=["480p", "Full-Resolution"],
                   help="annotation resolution (default: 480p, as the official evaluation)")
    p.add_argument("--dataset", choices=["jhmdb", "vip"], help="score JHMDB keypoints / VIP part labels instead "
                   "(--annotations is then that dataset's root; file formats: harness/score_propagation.py)")
    p.add_argument("--out", default="results", metavar="DIR", help="results folder (default results/)")
    p.add_argument("--source", metavar="TEXT", help="where the masks came from, recorded in run.json and shown in the "
                   "report, e.g. \"cutie eval_vos.py, commit 1a2b3c\"")
    p.add_argument("--paper-name", metavar="ROW", help="row of leaderboard/paper_reference.csv to compare with "
                   "(default: the shipped preset's paper_name, if --method names one)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.dataset:  # JHMDB keypoints / VIP parts: harness.score_propagation (its file formats)
        from harness.score_propagation import score_propagation

        try:
            records = score_propagation(args.predictions, args.method, args.annotations, args.dataset, out=args.out,
                                        videos=args.videos, source=args.source,
                                        notify=lambda m: print(m, file=sys.stderr))
        except (RunMismatch, DavisError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        failed = [r for r in records if r.get("status") != "ok"]
        for r in failed[:20]:
            print(f"  failed {r['video']}: {r['error']}")
        return 1 if failed else 0
    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        records = score_predictions(args.predictions, args.method, args.annotations, out=args.out, clean=args.clean,
                                    data=args.data, seeds=args.seeds, videos=args.videos, image_set=args.image_set,
                                    resolution=args.resolution, workers=args.workers, source=args.source,
                                    paper_name=args.paper_name, progress=not args.no_progress,
                                    notify=lambda m: print(m, file=sys.stderr))
    except (ScoreError, RunMismatch, DavisError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in records if r is None or r["status"] != "ok"]
    ok = [r for r in records if r is not None and r["status"] == "ok"]
    print(f"{args.method}: {len(ok)} unit(s) ok, {len(failed)} failed -> {Path(args.out) / args.method}")
    for r in failed[:20]:
        if r is not None:
            print(f"  failed {r['variant']} {r['video']} seed{r['seed']}: {r['error']}")
    if len(failed) > 20:
        print(f"  ... and {len(failed) - 20} more (see the unit files)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
