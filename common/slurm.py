"""Submit work as one SLURM job array through submitit: the layer ``harness.run --slurm`` and
``davis_c.build --slurm`` share.

``--slurm`` takes comma-separated ``key=value`` pairs with YAML-typed values:

* submitit's generic parameters as they are: ``timeout_min``, ``gpus_per_node``, ``cpus_per_task``,
  ``mem_gb``, ``nodes``, ``tasks_per_node``, ``name``;
* any other key is a SLURM parameter of submitit's ``SlurmExecutor`` (``partition``, ``account``,
  ``qos``, ``constraint``, ``array_parallelism``, ``exclude``, ``additional_parameters``, ...),
  written with or without the ``slurm_`` prefix;
* ``cluster=slurm`` (default), ``cluster=local`` (subprocesses on this machine) or ``cluster=debug``
  (in this process): the last two run the very same code path without a cluster (tests, dry runs).

Every array task runs ``module.main(argv)`` of a toolkit CLI (:class:`CommandTask`) in the folder the
job was submitted from.  Tasks are checkpointable: on preemption or timeout submitit requeues the
same task, and since every CLI of the toolkit resumes (finished work is kept) the rerun picks up.
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

__all__ = ["SlurmError", "GENERIC_PARAMETERS", "CLUSTERS", "SUBMIT_OPTIONS", "add_arguments", "parse_slurm",
           "executor_parameters", "make_executor", "strip_options", "check_full_names", "CommandTask",
           "submit_commands", "wait_all", "submit_build"]

#: submitit's cluster-independent parameters (``AutoExecutor``); any other key is a SLURM one.
GENERIC_PARAMETERS = ("timeout_min", "gpus_per_node", "cpus_per_task", "mem_gb", "nodes", "tasks_per_node",
                      "name", "stderr_to_stdout")
CLUSTERS = ("slurm", "local", "debug")
#: options that belong to the submission, not to the array tasks (name -> takes a value)
SUBMIT_OPTIONS = {"--slurm": True, "--tasks": True, "--slurm-wait": False, "--estimate": False,
                  "--figures": True}


class SlurmError(ValueError):
    """A submission that cannot be made (bad --slurm text, submitit missing, no sbatch, ...)."""


def add_arguments(parser: argparse.ArgumentParser, what: str, logs: str, tasks: str | None = None) -> None:
    """``--slurm`` / ``--slurm-wait`` (and ``--tasks`` when ``tasks`` describes it) for a CLI."""
    g = parser.add_argument_group("cluster (SLURM job arrays through submitit; pip install -e '.[slurm]')")
    g.add_argument("--slurm", metavar="KEY=VALUE,...", help=f"submit {what} as one SLURM job array instead of "
                   "running it here, e.g. partition=gpu,gpus_per_node=1,timeout_min=720,array_parallelism=64 "
                   f"(cluster=local or cluster=debug run the array on this machine); logs go to {logs}")
    if tasks:
        g.add_argument("--tasks", type=int, metavar="N", help=tasks)
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


def check_full_names(argv: Sequence[str], prefixes: Sequence[str] = ("--slu", "--tas", "--estim", "--fig")) -> None:
    """argparse accepts abbreviated options; the submission options must be spelled out to be stripped."""
    bad = [tok for tok in argv if tok.startswith(tuple(prefixes))]
    if bad:
        raise SlurmError(f"write {', '.join(bad)} in full (--slurm, --tasks, --slurm-wait)")


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


def submit_build(argv: Sequence[str], groups: Sequence[str], folder: str | os.PathLike, options: dict[str, Any],
                 wait: bool = False, log: Callable[[str], None] | None = None) -> int:
    """``davis_c.build --slurm ...``: one array task per shard group (``--group G``), then one task that
    writes the index.  On a SLURM cluster without ``wait`` the index task waits for the array through a
    job dependency; with cluster=local/debug, or with ``wait``, this call waits for everything."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    base = strip_options(argv)
    check_full_names(base)
    folder = Path(folder)
    executor = make_executor(folder / "%j", options, name="davis-c-build")
    jobs = submit_commands(executor, "davis_c.build", [base + ["--group", g, "--quiet"] for g in groups])
    array_id = str(jobs[0].job_id).split("_")[0]
    log(f"submitted {len(groups)} build task(s) ({', '.join(groups[:4])}{', ...' if len(groups) > 4 else ''}) as "
        f"job {array_id}; logs in {folder}/")
    index_argv = [t for t in base if t != "--force"] + ["--group", "index", "--quiet"]
    cluster = options.get("cluster", "slurm")
    if cluster == "slurm" and not wait:
        extra = dict(options.get("additional_parameters") or options.get("slurm_additional_parameters") or {})
        extra["dependency"] = f"afterany:{array_id}"
        opts = {k: v for k, v in options.items() if k not in ("array_parallelism", "slurm_array_parallelism",
                                                                "additional_parameters", "slurm_additional_parameters")}
        index_job = submit_commands(make_executor(folder / "%j", opts | {"additional_parameters": extra},
                                                  name="davis-c-index"), "davis_c.build", [index_argv])[0]
        log(f"the index task (job {index_job.job_id}) runs when the array is done; rerun the same command "
            "later to rebuild whatever failed")
        return 0
    codes = wait_all(jobs, log)
    index_job = submit_commands(make_executor(folder / "%j", options, name="davis-c-index"), "davis_c.build",
                                [index_argv])[0]
    (index_code,) = wait_all([index_job], log)
    failed = [g for g, c in zip(groups, codes) if c != 0]
    if failed:
        log(f"{len(failed)} build task(s) did not finish cleanly: {', '.join(failed)}; rerun the same command "
            "to retry them (complete shards are kept)")
    log(f"index written by task {index_job.job_id}" if index_code == 0 else "the index task failed")
    return 0 if not failed and index_code == 0 else 1
