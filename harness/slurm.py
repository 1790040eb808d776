"""``harness.run --slurm key=value,... --tasks N``: one SLURM job array through submitit.

Array task ``i`` of ``N`` runs exactly the local command with ``--shard i/N`` added, so its results
land in the shared ``--out`` the way a local run writes them: requeueing a task or resubmitting the
whole array is safe (finished units are skipped, failed ones retried).  Before anything is queued the
run is checked here once (method, weights, data, an incompatible earlier run) and ``run.json`` is
written.  Job logs and submitit's files go to ``<out>/<method>/slurm/<job id>/``.  The ``--slurm``
syntax and the submitit layer: :mod:`common.slurm`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from common import slurm as _slurm
from common.slurm import SlurmError, check_full_names, make_executor, parse_slurm, strip_options, submit_commands, wait_all

__all__ = ["SlurmError", "add_arguments", "submit_run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--slurm`` / ``--tasks`` / ``--slurm-wait`` options of ``harness.run``."""
    _slurm.add_arguments(parser, "this run", "<out>/<method>/slurm/",
                         tasks="number of array tasks: task i runs --shard i/N (default 1; capped at the number "
                               "of units)")


def _record_task_device(out, method: str, checked: str, device: str | None) -> None:
    """run.json written by the check above records the device the array tasks run on, not the check's."""
    from harness.results import read_run_json, write_json_atomic

    info = read_run_json(out, method)
    if device and info is not None and info.get("device") == checked and device != checked:
        write_json_atomic(Path(out) / method / "run.json", {**info, "device": device})


def submit_run(args: argparse.Namespace, argv: Sequence[str], log: Callable[[str], None] | None = None) -> int:
    """``harness.run --slurm ...``: check the run here, then submit ``--tasks`` shards as one array."""
    from harness.planner import RunRequest, plan_run, summary_table
    from harness.units import parse_shard

    log = log or (lambda msg: print(msg, file=sys.stderr))
    if args.shard:
        raise SlurmError("--shard and --slurm do not mix: --tasks N makes task i run shard i/N")
    options = parse_slurm(args.slurm)
    tasks = 1 if args.tasks is None else int(args.tasks)
    if tasks < 1:
        raise SlurmError("--tasks must be at least 1")
    base = strip_options(argv)
    check_full_names(base)
    # Every check that can fail happens here, once, before anything is queued; it also writes run.json.
    # The model is built on this machine's CPU (a login node has no GPU); run.json names the tasks' device.
    check_device = "cpu"
    task_device = args.device or ("cuda" if int(options.get("gpus_per_node") or 0) > 0 else None)
    req = RunRequest(method=args.method, config_file=args.config, overrides=args.overrides, data=args.data,
                     annotations=args.annotations, variants=args.variants, videos=args.videos, seeds=args.seeds,
                     shard=parse_shard(None), workers=args.workers, out=args.out, name=args.name,
                     checkpoint=args.checkpoint, random_init=args.random_init, device=check_device,
                     save_masks=args.save_masks)
    plan = plan_run(req, notify=log)
    _record_task_device(plan.setup.out, plan.setup.method, check_device, task_device)
    if plan.runner is not None:
        plan.runner.close()
        plan.runner = None
    method = plan.setup.method
    for note in plan.notices:
        log(f"!! {note}")
    if not plan.pending:
        log(f"{method}: all {len(plan.units)} unit(s) are done in {plan.setup.out}; nothing to submit")
        print(summary_table(plan))
        return 0
    tasks = min(tasks, len(plan.units))
    folder = Path(plan.setup.out) / method / "slurm"
    executor = make_executor(folder / "%j", options, name=f"harness-{method}")
    argvs = [base + ["--shard", f"{i}/{tasks}", "--no-progress"] for i in range(tasks)]
    jobs = submit_commands(executor, "harness.run", argvs)
    log(f"{method}: submitted {tasks} array task(s) ({len(plan.pending)} of {len(plan.units)} unit(s) to run) as "
        f"job {jobs[0].job_id.split('_')[0]}; logs in {folder}/")
    if not args.slurm_wait:
        log("results appear in --out as tasks finish; rerun the same command with --slurm-wait (or without "
            "--slurm, to see the summary) once they are done")
        return 0
    codes = wait_all(jobs, log)
    print(summary_table(plan))
    if any(c is None for c in codes):
        return 3
    return 1 if any(codes) else 0
