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
import functools
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from common.cli import cli_main, is_output_full, prog, raise_if_terminated
from common.errors import DavisError
from common.vocabulary import CLEAN, STRENGTHS, make_variant, variant_sort_key
from common.workers import exit_with_parent, stop_pool
from davis_c.datasets import Davis2017
from davis_c.davis import check_video_name
from harness.devices import check_workers
from harness.protocols import open_reader, warm_up
from harness.results import RunMismatch, fmt_pct, jf_summary, remove_stale_temps, unit_path, write_run_json
from harness.units import RecordError, Unit, UnitIdentity, check_method_name, new_record, write_unit

__all__ = ["ScoreError", "PredictionTree", "find_predictions", "score_unit", "score_predictions", "main",
           "IMPORTED_MODEL", "open_reader", "check_workers"]

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
        return sorted(dict.fromkeys(v for v, _ in self.roots), key=variant_sort_key)

    def seeds(self) -> list[int]:
        return sorted({s for _, s in self.roots})

    def folder(self, variant: str, video: str, seed: int) -> Path:
        root, suffix = self.roots[(variant, seed)]
        return root / video / suffix if suffix else root / video


def _dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")) if path.is_dir() else []


def _variant_roots(tree: Path, clean_elsewhere: bool = False) -> dict[str, Path]:
    """``clean`` and ``<strength>/<corruption>`` folders directly under ``tree``.  Any other folder is an
    error naming it (``High/``, ``5/``, a video folder put at the top: never silently skipped)."""
    out: dict[str, Path] = {}
    unknown = [d.name for d in _dirs(tree) if d.name not in (CLEAN, *STRENGTHS) and not _SEED.match(d.name)]
    if unknown:
        raise ScoreError(f"--predictions {tree}: folder(s) {', '.join(unknown[:6])} are neither clean/, a strength "
                         f"folder ({', '.join(STRENGTHS)}: lower case, as DAVIS-C names them) nor seed<k>/; rename "
                         "or move them (a clean run in <video>/<frame>.png layout goes with --clean DIR)")
    if (tree / CLEAN).is_dir():
        if clean_elsewhere:
            raise ScoreError(f"--clean given, but {tree / CLEAN} exists too: which clean predictions to score is "
                             "ambiguous; remove one of them")
        out[CLEAN] = tree / CLEAN
    for strength in STRENGTHS:
        for cdir in _dirs(tree / strength):
            out[make_variant(strength, cdir.name)] = cdir
    return out


def _seed_dirs(path: Path) -> dict[int, Path]:
    return {int(m.group(1)): d for d in _dirs(path) if (m := _SEED.match(d.name))}


def find_predictions(tree: str | Path, clean: str | Path | None = None, seeds: Sequence[int] | None = None) -> PredictionTree:
    """Work out the layout of a predictions tree (module docstring) and where each (variant, seed) lives.

    ``seeds`` is the seed to record for a tree without ``seed<k>`` folders (default 1); with seed folders
    it selects among them, and a seed the tree does not hold is an error.  Every video folder of every
    variant is looked at (the layout is never guessed from a few of them).
    """
    tree = Path(tree)
    if not tree.is_dir():
        raise ScoreError(f"--predictions {tree}: folder not found")
    if clean is not None and not Path(clean).is_dir():
        raise ScoreError(f"--clean {clean}: folder not found")
    roots: dict[tuple[str, int], tuple[Path, str]] = {}
    top_seeds = _seed_dirs(tree)
    if top_seeds:  # DAVIS-C layout, one tree per seed
        layout = "davis-c"
        others = [d.name for d in _dirs(tree) if not _SEED.match(d.name)]
        if others:
            raise ScoreError(f"--predictions {tree}: seed<k>/ folders next to other folders ({', '.join(others[:6])}); "
                             "with seed folders every prediction lives inside one")
        clean_seeds = _seed_dirs(Path(clean)) if clean is not None else {}
        for seed, sdir in top_seeds.items():
            for variant, root in _variant_roots(sdir, clean_elsewhere=clean is not None).items():
                roots[(variant, seed)] = (root, "")
            if clean is not None:
                if seed not in clean_seeds:
                    raise ScoreError(f"--clean {clean}: the predictions have seed folders, so --clean needs "
                                     f"seed{seed}/ too (found: {', '.join(d.name for d in _dirs(Path(clean)))})")
                roots[(CLEAN, seed)] = (clean_seeds[seed], "")
    else:
        variants = _variant_roots(tree, clean_elsewhere=clean is not None)
        if clean is not None:
            variants[CLEAN] = Path(clean)
        kinds = {}  # variant -> {"seed folders", "frames"} over every video folder
        for variant, root in variants.items():
            for vdir in _dirs(root):
                kinds.setdefault("seed" if _seed_dirs(vdir) else "flat", []).append(vdir)
        if len(kinds) > 1:
            raise ScoreError(f"--predictions {tree}: mixed layouts: {kinds['seed'][0]} holds seed<k>/ folders (harness "
                             f"layout) but {kinds['flat'][0]} holds the PNGs directly (DAVIS-C layout); use one")
        harness_layout = "seed" in kinds
        layout = "harness" if harness_layout else "davis-c"
        default_seed = list(seeds)[0] if seeds else 1
        if not harness_layout and seeds and len(seeds) > 1:
            raise ScoreError(f"--seeds {' '.join(map(str, seeds))}: {tree} has no seed<k>/ folders, so it holds "
                             "the masks of one seed; give one seed, or put each seed's tree in seed<k>/")
        for variant, root in variants.items():
            if harness_layout:
                found = sorted({s for v in _dirs(root) for s in _seed_dirs(v)})
                for seed in found:
                    roots[(variant, seed)] = (root, f"seed{seed}")
            else:
                roots[(variant, default_seed)] = (root, "")
    if seeds is not None and (top_seeds or layout == "harness"):
        have = sorted({s for _, s in roots})
        absent = [s for s in seeds if s not in have]
        if absent:
            raise ScoreError(f"--seeds {' '.join(map(str, absent))}: not in {tree} (its seed folders: "
                             f"{', '.join(f'seed{s}' for s in have) or 'none'})")
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
    dataset: str = "davis2017"
    split: str | None = None


@functools.lru_cache(maxsize=8)
def _reader(annotations: str, dataset: str, image_set: str, resolution: str, split: str | None):
    return open_reader(annotations, dataset, image_set=image_set, resolution=resolution, split=split)


@functools.lru_cache(maxsize=4096)
def _truth(annotations: str, dataset: str, image_set: str, resolution: str, split: str | None, video: str):
    from harness.identity import annotations_identity

    return annotations_identity(_reader(annotations, dataset, image_set, resolution, split), video)


def _unit(job: _Job) -> Unit:
    return Unit(job.method, job.variant, job.video, job.seed)


def score_unit(job: _Job, predictions_sha256: str | None = None) -> dict:
    """Score one unit with the scoring home (``harness.protocols.score_folder``) and write its record (ok
    or failed) through ``harness.units.write_unit``."""
    from harness.identity import predictions_digest
    from harness.metrics import EvaluationError
    from harness.protocols import score_folder

    unit = _unit(job)
    remove_stale_temps(unit.path(job.out))
    record = new_record(unit, predictions=job.pred_dir)
    identity = None
    try:
        reader = _reader(job.annotations, job.dataset, job.image_set, job.resolution, job.split)
        data, digest = _truth(job.annotations, job.dataset, job.image_set, job.resolution, job.split, job.video)
        if predictions_sha256 is None:
            predictions_sha256 = predictions_digest(job.pred_dir)
        identity = UnitIdentity(data=data, data_path=job.annotations, annotations_sha256=digest,
                                predictions_sha256=predictions_sha256)
        record.update(score_folder(reader, job.video, job.pred_dir))
    except (DavisError, EvaluationError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and is_output_full(exc):
            raise
        record = new_record(unit, predictions=job.pred_dir, status="failed", error=f"{type(exc).__name__}: {exc}")
    try:
        write_unit(job.out, unit, record, identity)
    except RecordError as exc:
        record = new_record(unit, predictions=job.pred_dir, status="failed", error=f"RecordError: {exc}")
        write_unit(job.out, unit, record, identity)
    return record


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


def _store_truth_check(data: str | Path, src, videos: Sequence[str], annotations: str | Path, dataset: str,
                       image_set: str, resolution: str, split: str | None) -> None:
    """With a DAVIS-C store as ``--data``: its recorded annotations must be those of ``--annotations``."""
    store = getattr(src, "store", None)
    if store is None or not hasattr(store, "masks_hash"):
        return
    for video in videos:
        if video not in src.videos:
            raise ScoreError(f"--data {data}: video {video!r} of {annotations} is not in the store "
                             f"(it has {', '.join(src.videos[:8])})")
        want = store.masks_hash(video)
        _, have = _truth(str(annotations), dataset, image_set, resolution, split, video)
        if want != have:
            raise ScoreError(f"--data {data} and --annotations {annotations} disagree on video {video!r}: the "
                             f"store's annotations have digest {str(want)[:12]}, the annotations' "
                             f"{have[:12]}; score against the ground truth the store was built from")


def score_predictions(predictions: str | Path, method: str, annotations: str | Path, *, out: str | Path = "results",
                      clean: str | Path | None = None, data: str | Path | None = None,
                      seeds: Sequence[int] | None = None, videos: Sequence[str] | None = None,
                      image_set: str = "val", resolution: str = "480p", workers: int = 1,
                      source: str | None = None, paper_name: str | None = None, progress: bool = True,
                      dataset: str | None = None, split: str | None = None,
                      notify: Callable[[str], None] = print) -> list[dict]:
    """Score every unit of a predictions tree whose identity (annotations, predictions) is not that of a
    finished unit; returns the records of all its units."""
    from harness.identity import predictions_digest, reuse_decision
    from harness.results import read_unit

    n_workers_asked = workers
    try:
        check_method_name(method)
        check_video_name(method, "--method")
        reader = open_reader(annotations, dataset, image_set=image_set, resolution=resolution, split=split)
    except (DavisError, RecordError) as exc:
        raise ScoreError(f"--annotations {annotations}: {exc}" if not isinstance(exc, RecordError) else str(exc)) from exc
    ds_name = getattr(reader, "name", None) or "davis2017"
    if not isinstance(reader, Davis2017) and not reader.scored_locally:
        raise ScoreError(f"{reader.label}: the ground truth of this split is private, so it cannot be scored "
                         "here; harness.submission packs predictions for the benchmark's server")
    tree = find_predictions(predictions, clean, seeds)
    set_file = getattr(reader, "set_file", None) or f"the {getattr(reader, 'label', ds_name)} split"
    all_videos = list(reader.videos)
    if videos:
        unknown = [v for v in videos if v not in all_videos]
        if unknown:
            raise ScoreError(f"--videos {', '.join(unknown)}: not in {set_file}")
        all_videos = [v for v in all_videos if v in set(videos)]
    if ds_name != "davis2017" and tree.variants != [CLEAN]:
        raise ScoreError(f"--dataset {ds_name}: only clean predictions can be scored against {annotations} "
                         f"(found {', '.join(v for v in tree.variants if v != CLEAN)}); score a -C build's "
                         "variants with harness.run on its store")
    rkey = (str(annotations), ds_name, image_set, resolution, split)
    planned_variants = tree.variants
    if data is not None:
        from harness.data import DataError, open_source

        try:
            with open_source(data, None if Path(data).is_file() else annotations) as src:
                planned_variants = list(src.variants)
                _store_truth_check(data, src, all_videos, *rkey)
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
                        for p in _dirs(tree.roots[(variant, s)][0])} - set(reader.videos))
        if stray:
            notify(f"note: {variant}: folder(s) {', '.join(stray[:5])} are not videos of {set_file}; ignored")
    fields = _reference_fields(method, paper_name)
    tree_path = str(Path(predictions).resolve())
    config = {"description": "predictions made by another tool, scored with harness.score (see run.json imported)",
              "model": IMPORTED_MODEL, **fields}
    info = {"method": method, "config": config, "toolkit_version": _toolkit_version(), "checkpoint": None,
            "checkpoint_sha256": None, "random_init": False, "device": "n/a (imported predictions)",
            "seeds": tree.seeds(), "variants": planned_variants, "videos": all_videos,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "imported": {"tool": "harness.score", "source": source, "predictions": tree_path,
                         "layout": tree.layout, "dataset": ds_name}}
    from harness.results import read_run_json

    old = (read_run_json(out, method) or {}).get("imported") or {}
    if isinstance(old, dict) and old.get("predictions") not in (None, tree_path):
        raise ScoreError(f"{Path(out) / method} holds the scores of predictions tree {old['predictions']}, not of "
                         f"{tree_path}: give this tree another --method (or put each seed's tree in one tree's "
                         "seed<k>/ folders), or remove the method folder to score it afresh")
    try:
        write_run_json(out, method, info)
    except RunMismatch as exc:
        raise RunMismatch(f"{exc} (another predictions tree scored under --method {method}? give this one "
                          "another --method)") from None
    jobs = [_Job(str(annotations), image_set, resolution, method, variant, video, seed,
                 str(tree.folder(variant, video, seed)), str(out), ds_name, split)
            for variant in tree.variants for seed in tree.seeds() if (variant, seed) in tree.roots
            for video in all_videos]
    todo: list[tuple[_Job, str | None]] = []
    for job in jobs:  # reuse decided from the identity (harness.identity.reuse_decision), never from the file alone
        unit = _unit(job)
        rec = read_unit(unit.path(out))
        if rec is None or rec.get("status") != "ok":
            todo.append((job, None))
            continue
        try:
            data_now, _ = _truth(*rkey, job.video)
        except (DavisError, OSError, ValueError):
            todo.append((job, None))
            continue
        digest = predictions_digest(job.pred_dir)
        decision = reuse_decision(rec, unit.path(out), data=data_now, data_path=str(annotations),
                                  predictions_sha256=digest or "none", unidentified="recompute")
        if decision.action != "reuse":
            if decision.reason:
                notify(f"note: {decision.reason}")
            todo.append((job, digest))
    try:
        n_workers = check_workers(n_workers_asked, len(todo), notify)
    except ValueError as exc:
        raise ScoreError(str(exc)) from exc
    notify(f"{method}: {len(jobs)} unit(s) ({tree.layout} layout, {len(tree.variants)} variant(s), "
           f"{len(all_videos)} video(s), seed(s) {' '.join(map(str, tree.seeds()))}; scored by the "
           f"{getattr(reader, 'protocol', '') or 'davis2017'} rules); {len(jobs) - len(todo)} done, "
           f"{len(todo)} to score -> {out}")
    from tqdm import tqdm

    warm_up()
    bar = tqdm(total=len(todo), unit="unit", desc=method, disable=not progress or not todo, file=sys.stderr)

    def done(rec: dict) -> None:
        raise_if_terminated()
        last = fmt_pct(rec.get("JF")) if rec["status"] == "ok" else "failed"
        bar.set_postfix_str(f"{rec['variant']} {rec['video']} s{rec['seed']}: J&F {last}")
        bar.update()

    try:
        if n_workers <= 1:
            for job, digest in todo:
                done(score_unit(job, digest))
        else:
            import multiprocessing as mp

            pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=mp.get_context("spawn"),
                                       initializer=exit_with_parent, initargs=(os.getpid(),))
            try:
                chunk = max(1, min(4, len(todo) // (4 * n_workers)))  # small trees: every worker gets units
                for rec in pool.map(score_unit, [j for j, _ in todo], [d for _, d in todo], chunksize=chunk):
                    done(rec)
            except BaseException:  # Ctrl-C, SIGTERM, a full disk, a dead worker: end the workers now
                stop_pool(pool)
                raise
            pool.shutdown(wait=True)
    finally:
        bar.close()
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
    p.add_argument("--annotations", required=True, metavar="ROOT",
                   help="the ground truth: a DAVIS root with Annotations/<resolution>/ and ImageSets/2017/<set>.txt "
                        "(also of every DAVIS-C variant), or the root of any benchmark harness.run reads (--dataset)")
    p.add_argument("--dataset", metavar="NAME",
                   help="benchmark of --annotations: davis2017 (default), davis2016, youtube-vos, mose, lvos, sav; "
                        "DAVIS-2016 and SA-V are recognised from their layout, as harness.run does. Each is scored "
                        "by its own rules (harness.protocols). jhmdb / vip score keypoints / part labels instead "
                        "(their file formats: harness/score_propagation.py)")
    p.add_argument("--split", metavar="SPLIT", help="the dataset's split (default: its evaluation split; DAVIS-2017: "
                   "--set)")
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
    p.add_argument("--out", default="results", metavar="DIR", help="results folder (default results/)")
    p.add_argument("--source", metavar="TEXT", help="where the masks came from, recorded in run.json and shown in the "
                   "report, e.g. \"cutie eval_vos.py, commit 1a2b3c\"")
    p.add_argument("--paper-name", metavar="ROW", help="row of leaderboard/paper_reference.csv to compare with "
                   "(default: the shipped preset's paper_name, if --method names one)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


@cli_main("harness.score", "finished units are kept; rerun the same command to resume")
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    notify = lambda m: print(m, file=sys.stderr)  # noqa: E731
    if args.dataset in ("jhmdb", "vip"):  # JHMDB keypoints / VIP parts: harness.score_propagation (its file formats)
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
    try:
        records = score_predictions(args.predictions, args.method, args.annotations, out=args.out, clean=args.clean,
                                    data=args.data, seeds=args.seeds, videos=args.videos, image_set=args.image_set,
                                    resolution=args.resolution, workers=args.workers, source=args.source,
                                    paper_name=args.paper_name, progress=not args.no_progress,
                                    dataset=args.dataset, split=args.split, notify=notify)
    except (ScoreError, RunMismatch, DavisError, RecordError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in records if r is None or r["status"] != "ok"]
    ok = [r for r in records if r is not None and r["status"] == "ok"]
    items = [(f"{r['variant']} {r['video']} seed{r['seed']}", r["variant"], r) for r in records if r is not None]
    print(jf_summary(f"{args.method}: mean scores x100 per variant (predictions {args.predictions}, "
                     f"ground truth {args.annotations})", items))
    print(f"{args.method}: {len(ok)} unit(s) ok, {len(failed)} failed -> {Path(args.out) / args.method}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
