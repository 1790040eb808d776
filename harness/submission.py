"""Submission archives for benchmarks whose ground truth is private (YouTube-VOS valid/test, MOSE valid).

``harness.run`` on such a split scores nothing locally: each unit records ``scoring: "server"`` and saves
the predicted palette PNGs of exactly the frames the server reads (YouTube-VOS: the frames meta.json lists,
every 5th frame from each object's first; MOSE: every frame).  This module packs one (method, variant,
seed) into the zip the evaluation servers take::

    Annotations/<video>/<frame>.png      DAVIS/YouTube-VOS palette, object ids as in the given masks

CLI::

    python -m harness.submission --out results --method stcn --zip stcn_ytvos_valid.zip   # or harness-submission
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path
from typing import Sequence

from common.atomic import atomic_write
from common.cli import cli_main, prog
from harness.results import RunMismatch, iter_unit_files, mask_dir, read_run_json, read_unit

__all__ = ["SubmissionError", "write_submission", "main"]


class SubmissionError(ValueError):
    """The results cannot make a complete submission; the message names what is missing."""


def write_submission(out: str | Path, method: str, zip_path: str | Path, *, variant: str = "clean",
                     seed: int = 1) -> dict:
    """Write the archive; returns {"videos": n, "frames": n, "dataset": name, "split": split}."""
    root = Path(out) / method / variant
    units = [p for p in iter_unit_files(out, method) if p.parent.parent == root and p.stem == f"seed{seed}"]
    if not units:
        raise SubmissionError(f"no unit results for seed {seed} under {root} (run harness.run first)")
    entries: list[tuple[str, Path]] = []
    datasets, problems = set(), []
    try:  # the plan: every video the runs of this method were asked for must be in the archive
        run = read_run_json(out, method) or {}
    except RunMismatch as exc:
        raise SubmissionError(str(exc)) from exc
    planned = run.get("videos")
    if not isinstance(planned, list) or not planned:
        raise SubmissionError(f"{Path(out) / method / 'run.json'}: missing or lists no planned videos; cannot tell "
                              "whether the submission is complete (rerun harness.run)")
    have = {p.parent.name for p in units}
    absent = [v for v in planned if v not in have]
    if absent:
        problems.append(f"{len(absent)} planned video(s) of run.json have no result: {', '.join(absent[:10])}"
                        f"{' ...' if len(absent) > 10 else ''}")
    for path in sorted(units):
        rec = read_unit(path)
        video = path.parent.name
        if rec is None or rec["status"] != "ok":
            problems.append(f"{video}: {'unreadable' if rec is None else 'failed: ' + str(rec.get('error'))}")
            continue
        if rec.get("scoring") != "server":
            problems.append(f"{video}: scored locally ({rec.get('dataset') or 'davis2017'}), not a server split")
            continue
        datasets.add((rec.get("dataset"), rec.get("split")))
        masks = mask_dir(out, method, variant, video, seed)
        pngs = sorted(masks.glob("*.png")) if masks.is_dir() else []
        if len(pngs) != rec.get("submission_frames"):
            problems.append(f"{video}: {len(pngs)} mask PNGs in {masks}, expected {rec.get('submission_frames')}")
            continue
        entries.extend((f"Annotations/{video}/{p.name}", p) for p in pngs)
    if problems:
        raise SubmissionError(f"cannot write a complete submission for {method} {variant} seed {seed}:\n  "
                              + "\n  ".join(problems) + "\n(rerun the same harness.run command to redo failed units)")
    if len(datasets) != 1:
        raise SubmissionError(f"{root}: units of several datasets/splits {sorted(datasets)}; use one --name per split")
    with atomic_write(zip_path, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, path in entries:
            zf.write(path, name)
    (dataset, split), = datasets
    return {"videos": len(units), "frames": len(entries), "dataset": dataset, "split": split}


@cli_main("harness.submission", "no archive was written")
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog("harness.submission", "harness-submission"),
                                description="Pack the saved predictions of a private benchmark split (YouTube-VOS "
                                            "valid, MOSE valid) into the zip its evaluation server expects "
                                            "(Annotations/<video>/<frame>.png).")
    p.add_argument("--out", default="results", help="harness results folder (default results/)")
    p.add_argument("--method", required=True, help="method folder name under --out (the run's --name)")
    p.add_argument("--variant", default="clean", help="variant (default clean)")
    p.add_argument("--seed", type=int, default=1, help="seed (default 1)")
    p.add_argument("--zip", required=True, type=Path, help="archive to write, e.g. stcn_ytvos_valid.zip")
    args = p.parse_args(argv)
    try:
        info = write_submission(args.out, args.method, args.zip, variant=args.variant, seed=args.seed)
    except SubmissionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.zip}: {info['videos']} videos, {info['frames']} masks ({info['dataset']} {info['split']}); "
          "upload it to the benchmark's evaluation server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
