"""Run a VOS method over DAVIS / DAVIS-C and score every video: ``python -m harness.run --method stcn+mcc``.

One unit = (method, variant, video, seed) -> one result file under ``--out``.  Rerunning the same
command skips finished units and retries failed ones; ``--shard i/N`` splits the unit list for job
arrays; ``--workers`` runs units in parallel processes.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Sequence

from common.cli import cli_main, prog
from common.threads import choose_threads, describe_rule
from harness import estimate, slurm
from harness.devices import describe_slots, plan_workers

# the harness, torch and the models are imported in main(), after the arguments are parsed: --help and
# argument errors answer at once instead of after loading torch/numba (~2.5 CPU-s)

EPILOG = """examples:
  python -m harness.run --list
  python -m harness.run --method stcn+mcc --data davis_c.h5 --variants clean 'high/*' --seeds 1 5 10
  python -m harness.run --method stcn --data DAVIS --checkpoint saves/stcn.pth --save-masks
  python -m harness.run --method stcn+mcc --random-init --set ttt_params.iterations=2 --shard 0/4
  python -m harness.run --method stcn --data DAVIS-C --annotations DAVIS --variants '*/glass_blur'
  python -m harness.run --method labelprop --data tests/data/real_davis16 --dataset davis2016 --threads 1
  python -m harness.run --method stcn --data YouTube --dataset youtube-vos --split valid   # -> submission
  python -m harness.run --method stcn+mcc --data davis_c.h5 --seeds 1 5 10 --estimate --figures figures.json
  python -m harness.run --method stcn+mcc --data davis_c.h5 --seeds 1 5 10 --workers 4 --devices 0,1
  python -m harness.run --method stcn+mcc --data davis_c.h5 --seeds 1 5 10 \\
      --slurm partition=gpu,gpus_per_node=1,timeout_min=720,array_parallelism=64 --tasks 128
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("harness.run", "harness-run"), description="Run a VOS method over DAVIS / DAVIS-C and score every video with the official J&F. "
                                "One result file per (method, variant, video, seed) under --out; rerunning the "
                                "same command skips finished units and retries failed ones.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("method")
    g.add_argument("--method", help="method preset name (see --list), e.g. stcn, stcn+mcc")
    g.add_argument("--list", action="store_true", help="print the methods and their presets, then exit")
    g.add_argument("--config", metavar="FILE", help="YAML file merged over the preset (or a whole new method). "
                   "A config whose 'model' is 'package.module:function' imports that module, i.e. RUNS ITS CODE: "
                   "it is refused unless you pass --allow-plugin")
    g.add_argument("--allow-plugin", action="store_true",
                   help="allow a --config file to name a 'package.module:function' model (its module is imported "
                        "and run); not needed when the target is given on the command line (--set model=pkg.mod:f)")
    g.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override settings, dotted keys, YAML values (e.g. segment.top_k=30 "
                        "ttt_params.iterations=2 resolution=null); a model option the preset has may be "
                        "given bare (top_k=30, encoder=pixels k=10); repeatable")
    g.add_argument("--checkpoint", metavar="PATH", help="model weights (default: the preset's file in ., ./saves/ "
                   "or $DAVIS_C_CHECKPOINTS)")
    g.add_argument("--random-init", action="store_true",
                   help="use golden-init weights instead of a checkpoint (NOT a real model; tests the pipeline)")
    d = p.add_argument_group("data")
    d.add_argument("--data", metavar="PATH", help="DAVIS root, DAVIS-C HDF5 file or official DAVIS-C folder tree "
                   "(default: ./davis_c.h5, else the synthetic sample build)")
    d.add_argument("--annotations", metavar="DAVIS_ROOT", help="DAVIS root with the ground truth of a DAVIS-C "
                   "folder tree")
    d.add_argument("--variants", nargs="+", metavar="V", help="'all' (default), 'clean', or strength/corruption "
                   "patterns such as 'high/*' '*/glass_blur'")
    d.add_argument("--videos", nargs="+", metavar="NAME", help="subset of videos (names or globs)")
    d.add_argument("--dataset", metavar="NAME", help="benchmark of a --data root: davis2017 (default), davis2016, "
                   "youtube-vos, mose, lvos, sav, and jhmdb / vip (label propagation: PCK / mIoU) (see docs/datasets.md); "
                   "DAVIS-2016, SA-V, JHMDB and VIP are recognised from their layout")
    d.add_argument("--split", metavar="SPLIT", help="the dataset's split (default: its evaluation split, e.g. "
                   "val, valid); private splits (YouTube-VOS valid, MOSE valid) are exported, not scored")
    r = p.add_argument_group("run")
    r.add_argument("--seeds", nargs="+", type=int, default=[1], metavar="S", help="seeds (paper: 1 5 10); default 1")
    r.add_argument("--out", default="results", metavar="DIR", help="results folder (default results/)")
    r.add_argument("--name", help="output folder name for this method (default: the method name); use it to keep "
                   "runs with different settings apart")
    r.add_argument("--save-masks", action="store_true", help="also write predicted masks as DAVIS palette PNGs")
    r.add_argument("--shard", metavar="i/N", help="run only slice i of N of the unit list (SLURM job arrays)")
    r.add_argument("--workers", type=int, default=1, help="parallel worker processes on this machine (default 1)")
    r.add_argument("--threads", type=int, metavar="N", help="CPU threads of each process for torch (intra- and "
                   "inter-op), numba and OpenCV; " + describe_rule() + ". Recorded in run.json and in each "
                   "unit's timing (label propagation gives identical scores for any count; torch models may "
                   "differ in the last bits, see docs/performance.md)")
    r.add_argument("--device", help="torch device (default: cuda if available, else cpu); with --workers N, "
                   "'cuda' spreads the workers over every visible GPU")
    r.add_argument("--devices", metavar="0,1,...", help="GPU indices to spread the --workers over, round-robin "
                   "(default: every GPU in CUDA_VISIBLE_DEVICES); several workers may share one GPU")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    slurm.add_arguments(p)
    estimate.add_arguments(p)
    return p


@cli_main("harness.run", "finished units are kept; rerun the same command to resume")
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from harness.data import DataError
    from harness.executor import SetupError
    from harness.methods import MethodError, describe_methods
    from harness.results import RunMismatch, unit_status
    from harness.planner import RunRequest, WorkerDied, execute, plan_run, summary_table
    from harness.units import parse_shard

    if args.list:
        print(describe_methods())
        try:
            from models import ttt

            presets = ttt.available_presets()
            print("\nTTT presets (models.ttt):", ", ".join(presets))
        except Exception:  # models.ttt absent or without a preset list: the methods are still listed
            pass
        return 0
    try:
        if args.estimate:
            return estimate.main_estimate(args)
        if args.threads is not None and args.threads < 1:
            raise SetupError("--threads must be at least 1")
        if args.slurm is not None or args.tasks is not None or args.slurm_wait or args.slurm_wait_timeout is not None:
            if args.slurm is None:
                raise slurm.SlurmError("--tasks / --slurm-wait / --slurm-wait-timeout go with --slurm KEY=VALUE,...")
            return slurm.submit_run(args, sys.argv[1:] if argv is None else list(argv))
        if args.workers < 1:
            raise SetupError("--workers must be at least 1")
        threads = choose_threads(args.threads, args.workers).threads
        slots = [replace(s, threads=threads) for s in plan_workers(args.device, args.devices, args.workers)]
        if args.workers == 1:
            args.device = slots[0].device
        req = RunRequest(method=args.method, config_file=args.config, overrides=args.overrides, data=args.data,
                         annotations=args.annotations, variants=args.variants, videos=args.videos,
                         seeds=args.seeds, shard=parse_shard(args.shard), workers=args.workers, out=args.out,
                         name=args.name, checkpoint=args.checkpoint, random_init=args.random_init,
                         device=args.device, save_masks=args.save_masks, allow_plugin=args.allow_plugin,
                         dataset=args.dataset, split=args.split, threads=args.threads)
        plan = plan_run(req, notify=lambda msg: print(msg, file=sys.stderr))
    except (MethodError, DataError, SetupError, RunMismatch, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for note in plan.notices:
        print(f"!! {note}", file=sys.stderr)
    i, n = req.shard
    shard = f" (shard {i}/{n} of {plan.all_units})" if n > 1 else ""
    print(f"{plan.setup.method}: {len(plan.units)} unit(s){shard} on {plan.setup.device} "
          f"({plan.setup.threads} thread(s) per process); {plan.done_ok} done, "
          f"{plan.done_failed} failed before, {len(plan.pending)} to run -> {plan.setup.out}", file=sys.stderr)
    try:
        if args.workers > 1:
            print(describe_slots(slots), file=sys.stderr)
        execute(plan, workers=args.workers, progress=not args.no_progress, slots=slots)
    except WorkerDied as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(summary_table(plan))
    failed = sum(unit_status(u.path(plan.setup.out)) == "failed" for u in plan.units)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
