"""``harness.run --slurm key=value,... --tasks N``: one SLURM job array through submitit.

Array task ``i`` of ``N`` runs exactly the local command with ``--shard i/N`` added, so its results
land in the shared ``--out`` the way a local run writes them: requeueing a task or resubmitting the
whole array is safe (finished units are skipped, failed ones retried).  Before anything is queued the
run is checked here once (method, weights, data, an incompatible earlier run) and ``run.json`` is
written.  Job logs and submitit's files go to ``<out>/<method>/slurm/<job>_<task>/``.  The ``--slurm``
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


def _record_task_device(out, method: str, checked: str, device: str | None, threads: tuple[int, int] | None = None
                        ) -> None:
    """run.json written by the check above records the device (and the threads per process) the array
    tasks run with, not the check's.  ``threads``: (the check's count, the tasks' count)."""
    from harness.results import read_run_json, write_json_atomic

    info = read_run_json(out, method)
    if info is None:
        return
    new = dict(info)
    if device and info.get("device") == checked and device != checked:
        new["device"] = device
    if threads is not None and info.get("threads") == threads[0]:
        new["threads"] = threads[1]
    if new != info:
        write_json_atomic(Path(out) / method / "run.json", new)


def task_threads(threads: int | None, workers: int, options: dict) -> int:
    """The threads per process of an array task: --threads, else OMP_NUM_THREADS (sbatch exports this
    environment), else the task's CPUs (``cpus_per_task``, SLURM's default 1) over its --workers."""
    from common.threads import choose_threads

    cpus = int(options.get("cpus_per_task") or options.get("slurm_cpus_per_task") or 1)
    return choose_threads(threads, workers, cores=cpus).threads


def shards_to_submit(units: Sequence, pending: Sequence, tasks: int) -> list[int]:
    """The array tasks (shards ``i`` of ``tasks``) that still have a unit to run: a rerun submits only
    those (the others are done)."""
    from harness.units import shard_units

    todo = set(pending)
    return [i for i in range(tasks) if any(u in todo for u in shard_units(units, i, tasks))]


def submit_run(args: argparse.Namespace, argv: Sequence[str], log: Callable[[str], None] | None = None) -> int:
    """``harness.run --slurm ...``: check the run here, then submit the unfinished ``--tasks`` shards as one
    array (task ``i`` runs ``--shard i/N``)."""
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
    # The model is built on this machine's CPU (a login node has no GPU); run.json names the tasks' device
    # and threads (each task chooses its own: --threads, else its allocation, SLURM_CPUS_PER_TASK).
    check_device = "cpu"
    task_device = args.device or ("cuda" if int(options.get("gpus_per_node") or 0) > 0 else None)
    req = RunRequest(method=args.method, config_file=args.config, overrides=args.overrides, data=args.data,
                     annotations=args.annotations, variants=args.variants, videos=args.videos, seeds=args.seeds,
                     shard=parse_shard(None), workers=args.workers, out=args.out, name=args.name,
                     checkpoint=args.checkpoint, random_init=args.random_init, device=check_device,
                     save_masks=args.save_masks, allow_plugin=args.allow_plugin, dataset=args.dataset,
                     split=args.split, threads=args.threads)
    plan = plan_run(req, notify=log)
    # the tasks take this lock themselves (task i: its shard's lock; one task: this very lock)
    plan.release()
    try:
        _record_task_device(plan.setup.out, plan.setup.method, check_device, task_device,
                            (plan.setup.threads, task_threads(args.threads, args.workers, options)))
    finally:
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
    shards = shards_to_submit(plan.units, plan.pending, tasks)
    folder = Path(plan.setup.out) / method / "slurm"
    executor = make_executor(folder / "%j", options, name=f"harness-{method}")
    argvs = [base + ["--shard", f"{i}/{tasks}", "--no-progress"] for i in shards]
    jobs = submit_commands(executor, "harness.run", argvs)
    which = "" if len(shards) == tasks else (f" (shard(s) {', '.join(map(str, shards))} of {tasks}; the others "
                                             "are done)")
    log(f"{method}: submitted {len(shards)} array task(s){which} ({len(plan.pending)} of {len(plan.units)} unit(s) "
        f"to run) as job {str(jobs[0].job_id).split('_')[0]}; logs in {folder}/<job>_<task>/")
    if not args.slurm_wait:
        log("results appear in --out as tasks finish; rerun the same command with --slurm-wait (or without "
            "--slurm, to see the summary) once they are done")
        return 0
    codes = wait_all(jobs, log, timeout_min=args.slurm_wait_timeout)
    print(summary_table(plan))
    if any(c not in (0, 1) for c in codes):  # a task that did not end cleanly (reported above)
        return 3
    return 1 if any(codes) else 0
