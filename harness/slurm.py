"""Submit a run as one SLURM job array through submitit (``--slurm key=value,... --tasks N``).

Array task ``i`` of ``N`` runs exactly the local command with ``--shard i/N`` added, so its results
land in the shared ``--out`` the way a local run writes them: requeueing a task or resubmitting the
whole array is safe (finished units are skipped, failed ones retried).  The same mechanism submits
``davis_c.build`` (one task per shard group, then a task that writes the index).

``--slurm`` takes comma-separated ``key=value`` pairs with YAML-typed values:

* submitit's generic parameters as they are: ``timeout_min``, ``gpus_per_node``, ``cpus_per_task``,
  ``mem_gb``, ``nodes``, ``tasks_per_node``, ``name``;
* any other key is a SLURM parameter of submitit's ``SlurmExecutor`` (``partition``, ``account``,
  ``qos``, ``constraint``, ``array_parallelism``, ``exclude``, ...), written with or without the
  ``slurm_`` prefix;
* ``cluster=slurm`` (default), ``cluster=local`` (subprocesses on this machine) or ``cluster=debug``
  (in this process): the last two run the very same code path without a cluster (tests, dry runs).

Job logs and submitit's pickles go to ``<out>/<method>/slurm/`` (``%j`` = job id, ``%a`` = task).
Each task is checkpointable: on preemption or timeout submitit requeues it and the rerun resumes.
submitit is an optional dependency: ``pip install -e ".[slurm]"``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

__all__ = ["SlurmError", "GENERIC_PARAMETERS", "CLUSTERS", "add_arguments", "parse_slurm", "executor_parameters",
           "make_executor", "strip_options", "CommandTask", "submit_commands", "wait_all", "submit_run"]

#: submitit's cluster-independent parameters (``AutoExecutor``); any other key is a SLURM one.
GENERIC_PARAMETERS = ("timeout_min", "gpus_per_node", "cpus_per_task", "mem_gb", "nodes", "tasks_per_node",
                      "name", "stderr_to_stdout")
CLUSTERS = ("slurm", "local", "debug")
#: options of ``harness.run`` that belong to the submission, not to the array tasks
SUBMIT_OPTIONS = {"--slurm": True, "--tasks": True, "--slurm-wait": False, "--estimate": False,
                  "--figures": True}


class SlurmError(ValueError):
    """A submission that cannot be made (bad --slurm text, submitit missing, no sbatch, ...)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--slurm`` / ``--tasks`` / ``--slurm-wait`` options of ``harness.run``."""
    g = parser.add_argument_group("cluster (SLURM job arrays through submitit; pip install -e '.[slurm]')")
    g.add_argument("--slurm", metavar="KEY=VALUE,...", help="submit this run as one SLURM job array instead of "
                   "running it here, e.g. partition=gpu,gpus_per_node=1,timeout_min=720,array_parallelism=64 "
                   "(cluster=local or cluster=debug run the array on this machine); logs go to "
                   "<out>/<method>/slurm/")
    g.add_argument("--tasks", type=int, metavar="N", help="number of array tasks: task i runs --shard i/N "
                   "(default 1; capped at the number of units)")
    g.add_argument("--slurm-wait", action="store_true", help="wait for the array to finish and print the summary")


def parse_slurm(text: str | None) -> dict[str, Any]:
    """``"partition=gpu,timeout_min=720"`` -> ``{"partition": "gpu", "timeout_min": 720}``."""
    if text is None:
        return {}
    out: dict[str, Any] = {}
    for item in (x.strip() for x in str(text).split(",")):
        if not item:
            continue
        if "=" not in item:
            raise SlurmError(f"--slurm expects key=value pairs separated by commas, got {item!r}")
        key, raw = (x.strip() for x in item.split("=", 1))
        if not key:
            raise SlurmError(f"--slurm {item!r}: empty key")
        if key in out:
            raise SlurmError(f"--slurm gives {key!r} twice")
        try:
            out[key] = yaml.safe_load(raw) if raw else None
        except yaml.YAMLError:
            out[key] = raw
    cluster = out.get("cluster", "slurm")
    if cluster not in CLUSTERS:
        raise SlurmError(f"--slurm cluster={cluster!r}: use one of {', '.join(CLUSTERS)}")
    return out


def executor_parameters(options: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    """Split parsed ``--slurm`` options into (cluster, ``AutoExecutor.update_parameters`` keywords)."""
    options = dict(options)
    cluster = options.pop("cluster", "slurm")
    params: dict[str, Any] = {"name": name}
    for key, value in options.items():
        if key in GENERIC_PARAMETERS or key.startswith(("slurm_", "local_", "debug_")):
            params[key] = value
        else:
            params[f"slurm_{key}"] = value
    return cluster, params


def _submitit():
    try:
        import submitit
    except ImportError:
        raise SlurmError("--slurm needs submitit: pip install -e '.[slurm]' (or pip install submitit)") from None
    return submitit


def make_executor(folder: str | os.PathLike, options: dict[str, Any], name: str):
    """A submitit ``AutoExecutor`` writing its files under ``folder`` (logs: ``%j_%t_log.out/err``)."""
    submitit = _submitit()
    cluster, params = executor_parameters(options, name)
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise SlurmError("--slurm: no sbatch on this machine; submit from a SLURM login node (or add "
                         "cluster=local to run the array on this machine)")
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    try:
        executor.update_parameters(**params)
    except (NameError, AssertionError, TypeError, ValueError) as exc:
        raise SlurmError(f"--slurm: submitit refused the parameters: {exc}") from exc
    return executor


def strip_options(argv: Sequence[str], options: dict[str, bool] = SUBMIT_OPTIONS) -> list[str]:
    """``argv`` without the submission options (``options``: name -> takes a value)."""
    out: list[str] = []
    skip = False
    for tok in argv:
        if skip:
            skip = False
            continue
        name = tok.split("=", 1)[0]
        if name in options:
            skip = options[name] and "=" not in tok
            continue
        out.append(tok)
    return out


class CommandTask:
    """One array task: ``module.main(argv)`` run in the submitting folder; returns its exit status.

    A plain picklable callable.  Its ``checkpoint`` method makes submitit requeue the same task on
    preemption or timeout (what is finished stays finished; the rerun resumes).
    """

    def __init__(self, module: str, cwd: str | os.PathLike) -> None:
        self.module = module
        self.cwd = str(cwd)

    def __call__(self, argv: Sequence[str]) -> int:
        os.chdir(self.cwd)
        main: Callable[[Sequence[str]], int] = importlib.import_module(self.module).main
        try:
            rc = main(list(argv))
        except SystemExit as exc:  # argparse errors
            rc = exc.code if isinstance(exc.code, int) else 2
        return int(rc or 0)

    def checkpoint(self, argv: Sequence[str]):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(CommandTask(self.module, self.cwd), argv)

    def __repr__(self) -> str:
        return f"CommandTask({self.module!r}, cwd={self.cwd!r})"


def submit_commands(executor, module: str, argvs: Sequence[Sequence[str]], cwd: str | os.PathLike | None = None):
    """Submit one job array, task ``i`` running ``module.main(argvs[i])``; returns the jobs."""
    task = CommandTask(module, cwd or os.getcwd())
    return executor.map_array(task, [list(a) for a in argvs])


def wait_all(jobs, log: Callable[[str], None] = print) -> list[int | None]:
    """Wait for every job; exit status per task (None where the job itself failed, with its log named)."""
    codes: list[int | None] = []
    for i, job in enumerate(jobs):
        try:
            codes.append(int(job.result()))
        except Exception as exc:  # submitit's FailedJobError / UncompletedJobError
            log(f"task {i} (job {job.job_id}) did not finish: {str(exc).splitlines()[0] if str(exc) else exc!r}; "
                f"log: {job.paths.stderr}")
            codes.append(None)
    return codes


def submit_run(args: argparse.Namespace, argv: Sequence[str], log: Callable[[str], None] | None = None) -> int:
    """``harness.run --slurm ...``: check the run here, then submit ``--tasks`` shards as one array."""
    from harness.runner import RunRequest, plan_run, summary_table
    from harness.units import parse_shard

    log = log or (lambda msg: print(msg, file=sys.stderr))
    if args.shard:
        raise SlurmError("--shard and --slurm do not mix: --tasks N makes task i run shard i/N")
    options = parse_slurm(args.slurm)
    tasks = 1 if args.tasks is None else int(args.tasks)
    if tasks < 1:
        raise SlurmError("--tasks must be at least 1")
    base = strip_options(argv)
    if any(tok.startswith("--slu") or tok.startswith("--tas") for tok in base):
        raise SlurmError("write --slurm / --tasks / --slurm-wait in full")
    # Every check that can fail happens here, once, before anything is queued; it also writes run.json.
    req = RunRequest(method=args.method, config_file=args.config, overrides=args.overrides, data=args.data,
                     annotations=args.annotations, variants=args.variants, videos=args.videos, seeds=args.seeds,
                     shard=parse_shard(None), workers=args.workers, out=args.out, name=args.name,
                     checkpoint=args.checkpoint, random_init=args.random_init, device=args.device or "cpu",
                     save_masks=args.save_masks)
    plan = plan_run(req, notify=log)
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
