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
same task, and since every CLI of the toolkit resumes (finished work is kept) the rerun picks up; a
requeued attempt leaves no result, so a waiting submitter goes on waiting for the requeued task.
``timeout_min`` defaults to :data:`DEFAULT_TIMEOUT_MIN` (720 min); a task still unfinished after
submitit's last requeue (3 time limits) fails with :class:`TaskCut`, which says so.

:func:`wait_all` waits without accounting: a task is done when its result file exists, and one that
left ``squeue`` without a result (``kill -9``, out of memory, ``scancel``) is reported with how
``scontrol`` (or ``sacct`` where accounting exists) says it ended and the end of its log.
submitit is an optional dependency: ``pip install -e ".[slurm]"``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

__all__ = ["SlurmError", "GENERIC_PARAMETERS", "CLUSTERS", "SUBMIT_OPTIONS", "DEFAULT_TIMEOUT_MIN", "add_arguments",
           "parse_slurm", "executor_parameters", "make_executor", "strip_options", "check_full_names", "CommandTask",
           "TaskCut", "TimeLimitReached", "submit_commands", "queued_jobs", "ended_state", "wait_all", "submit_build"]

#: submitit's cluster-independent parameters (``AutoExecutor``); any other key is a SLURM one.
GENERIC_PARAMETERS = ("timeout_min", "gpus_per_node", "cpus_per_task", "mem_gb", "nodes", "tasks_per_node",
                      "name", "stderr_to_stdout")
CLUSTERS = ("slurm", "local", "debug")
#: options that belong to the submission, not to the array tasks (name -> takes a value)
SUBMIT_OPTIONS = {"--slurm": True, "--tasks": True, "--slurm-wait": False, "--slurm-wait-timeout": True,
                  "--estimate": False, "--figures": True}
#: a task's time limit when --slurm gives no timeout_min (submitit's own defaults, 5 min on SLURM and
#: 2 min with cluster=local, cut real work short)
DEFAULT_TIMEOUT_MIN = 720


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
    g.add_argument("--slurm-wait", action="store_true", help="wait for the array to finish and print the summary; "
                   "every task that did not end cleanly is reported with its log (needs squeue, not sacct)")
    g.add_argument("--slurm-wait-timeout", type=float, metavar="MINUTES",
                   help="stop waiting after this many minutes (the tasks go on; default: until every task has "
                        "ended, which SLURM bounds by timeout_min and the queue)")


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
    params: dict[str, Any] = {"name": name, "timeout_min": DEFAULT_TIMEOUT_MIN}
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
    executor.davis_c_timeout_min = params["timeout_min"]  # named by a task cut by its time limit
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


class TimeLimitReached(KeyboardInterrupt):
    """Raised in a task when submitit will not requeue it after its time limit: unwinds the run like
    Ctrl-C (finished units kept, the running one not recorded as failed)."""


class TaskCut(RuntimeError):
    """A task cut by its time limit (``timeout_min``) once submitit stopped requeueing it."""


class _Requeue:
    """What submitit's time-limit / preemption handler did in this task process."""

    def __init__(self) -> None:
        self.exit: SystemExit | None = None   # submitit requeued the task and exits with this
        self.cut: str | None = None           # submitit will not requeue (its reason)


def _wrap_submitit_handler(state: _Requeue) -> None:
    """Wrap the handler submitit installs for its requeue signal (``SIGUSR2``) so that this task learns
    what it did: requeued (then the process must exit as submitit says, whatever the run does with the
    SIGTERM SLURM sends next) or not requeued (the time limit is final: stop like Ctrl-C)."""
    import signal

    from submitit.core.job_environment import JobEnvironment

    try:
        sig = JobEnvironment._usr_sig()
    except RuntimeError:
        return
    handler = signal.getsignal(sig)
    if not callable(handler) or getattr(handler, "_davis_c", False):
        return

    def wrapped(signum, frame):
        # the SIGTERM SLURM sends a requeued job must not interrupt this handler before it records the
        # outcome (the attempt ends either way; a SIGTERM after it still stops the run in order)
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
        try:
            handler(signum, frame)
        except SystemExit as exc:  # requeued: submitit exits this attempt
            state.exit = exc
            raise
        except Exception as exc:  # submitit's UncompletedJobError: not requeued
            state.cut = str(exc)
            raise TimeLimitReached(state.cut) from exc
        finally:
            signal.signal(signal.SIGTERM, previous)

    wrapped._davis_c = True  # type: ignore[attr-defined]
    signal.signal(sig, wrapped)


class CommandTask:
    """One array task: ``module.main(argv)`` run in the submitting folder; returns its exit status.

    A plain picklable callable.  Its ``checkpoint`` method makes submitit requeue the same task on
    preemption or timeout (what is finished stays finished; the rerun resumes).  A requeue is never a
    result: the attempt exits the way submitit asks (no result file), even when the run turned the
    SIGTERM that follows into an orderly stop.  A time limit after which submitit does not requeue
    raises :class:`TaskCut`, which names ``timeout_min``.
    """

    def __init__(self, module: str, cwd: str | os.PathLike, timeout_min: float | None = None) -> None:
        self.module = module
        self.cwd = str(cwd)
        self.timeout_min = timeout_min

    def __call__(self, argv: Sequence[str]) -> int:
        os.chdir(self.cwd)
        state = _Requeue()
        _wrap_submitit_handler(state)
        main: Callable[[Sequence[str]], int] = importlib.import_module(self.module).main
        try:
            rc = main(list(argv))
        except SystemExit as exc:
            if state.exit is not None or state.cut is not None:
                raise
            rc = exc.code if isinstance(exc.code, int) else 2  # argparse errors
        except TimeLimitReached:
            rc = None
        if state.exit is not None:  # requeued; the run stopped on the SIGTERM that came with it
            raise state.exit
        if state.cut is not None:
            limit = f"timeout_min={self.timeout_min:g}" if self.timeout_min else "its time limit"
            raise TaskCut(f"cut by the time limit ({limit}) and not requeued again ({state.cut}); finished work "
                          "is kept: rerun the same command with a larger timeout_min or more --tasks")
        return int(rc or 0)

    def checkpoint(self, argv: Sequence[str]):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(CommandTask(self.module, self.cwd, self.timeout_min), argv)

    def __repr__(self) -> str:
        return f"CommandTask({self.module!r}, cwd={self.cwd!r})"


def submit_commands(executor, module: str, argvs: Sequence[Sequence[str]], cwd: str | os.PathLike | None = None):
    """Submit one job array, task ``i`` running ``module.main(argvs[i])``; returns the jobs."""
    task = CommandTask(module, cwd or os.getcwd(), getattr(executor, "davis_c_timeout_min", None))
    return executor.map_array(task, [list(a) for a in argvs])


# ------------------------------------------------------------------------------------------------ waiting
#: what a task's exit status means (the toolkit's CLIs: common.cli)
_STATUS = {1: "some units failed (listed below)", 2: "error", 130: "interrupted", 143: "terminated (SIGTERM)"}


def _run(cmd: Sequence[str], timeout: float = 30) -> str | None:
    """stdout of a SLURM client command, None when it fails (no controller, no accounting, ...)."""
    import subprocess

    if shutil.which(cmd[0]) is None:
        return None
    try:
        res = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout if res.returncode == 0 else None


def queued_jobs(job_ids: Sequence[str]) -> set[str] | None:
    """The array tasks among ``job_ids`` (``<array>_<task>``) that SLURM still has pending, running,
    requeued or completing (``squeue``: needs no accounting); None when squeue cannot be asked."""
    arrays = sorted({str(j).split("_")[0] for j in job_ids})
    text = _run(["squeue", "-h", "-r", "-j", ",".join(arrays), "-o", "%i %T"])
    if text is None:
        return None
    return {line.split()[0] for line in text.splitlines() if line.strip()}


def ended_state(job_id: str) -> str:
    """How SLURM says a job ended: ``scontrol show job`` (kept ``MinJobAge``, 300 s by default, after
    the end; needs no accounting), else ``sacct`` (needs accounting), else "unknown"."""
    text = _run(["scontrol", "-o", "show", "job", str(job_id)])
    if text:
        fields = dict(f.split("=", 1) for f in text.split() if "=" in f)
        state, code, reason = fields.get("JobState"), fields.get("ExitCode"), fields.get("Reason")
        if state:
            parts = [state]
            if code and code != "0:0":
                rc, sig = (code.split(":") + ["0"])[:2]
                parts.append(f"killed by signal {sig}" if sig != "0" else f"exit code {rc}")
            if reason and reason != "None":
                parts.append(f"reason {reason}")
            return ", ".join(parts)
    text = _run(["sacct", "-n", "-P", "-X", "-j", str(job_id), "-o", "State,ExitCode"])
    if text and text.strip():
        state, _, code = text.strip().splitlines()[0].partition("|")
        return f"{state}, exit code {code}" if code and code != "0:0" else state
    return "unknown (the job is gone from squeue and scontrol; no accounting to ask)"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").rstrip().splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])


def _cluster(job) -> str:
    name = type(job).__name__
    return "debug" if name.startswith("Debug") else "local" if name.startswith("Local") else "slurm"


def _outcome(job) -> tuple[str, object] | None:
    """("success", rc) / ("error", traceback) from the task's result file, None when there is none."""
    from submitit.core import utils

    path = job.paths.result_pickle
    if not path.exists():
        return None
    try:
        return utils.pickle_load(path)
    except Exception:  # written this instant (renamed into place; a partial read on a slow share)
        time.sleep(2)
        return utils.pickle_load(path)


def wait_all(jobs, log: Callable[[str], None] = print, timeout_min: float | None = None,
             poll_s: float = 5.0, grace_s: float = 20.0) -> list[int | None]:
    """Wait for every task of an array; the exit status of each (None where it did not finish).

    A task is done when SLURM no longer has it (``squeue``) and then its result file tells how it ended
    (a requeued task is back in the queue, so the result of an attempt before a requeue is never taken
    for its end; with ``cluster=local`` a task is done when its result file exists).  A task that left ``squeue`` without one
    (``kill -9``, out of memory, ``scancel``, a lost node) is reported after ``grace_s`` with how SLURM
    says it ended and its log: no accounting (``sacct``) is needed.  Every non-zero status is reported with the task's log and the end of
    it; a task that raised is reported with its whole error.  After ``timeout_min`` minutes the wait
    stops (the tasks go on) and the unfinished ones count as None.
    """
    codes: list[int | None] = [None] * len(jobs)
    if not jobs:
        return codes
    cluster = _cluster(jobs[0])
    if cluster == "debug":  # runs in this process, in job.result()
        for i, job in enumerate(jobs):
            try:
                codes[i] = _report(i, job, ("success", job.result()), log)
            except Exception as exc:
                codes[i] = _report(i, job, ("error", f"{type(exc).__name__}: {exc}"), log)
        return codes
    deadline = None if timeout_min is None else time.monotonic() + 60 * float(timeout_min)
    pending = set(range(len(jobs)))
    gone_since: dict[int, float] = {}
    while pending:
        queued = queued_jobs([jobs[i].job_id for i in pending]) if cluster == "slurm" else None
        for i in sorted(pending):
            job = jobs[i]
            if cluster == "local":
                outcome = _outcome(job)
                if outcome is None:
                    if not job.done():
                        continue
                    outcome = _outcome(job)  # its result file may land just after the process ends
            elif queued is None:  # squeue did not answer (controller restarting): a result file is the sign
                outcome = _outcome(job)
                if outcome is None:
                    continue
            elif str(job.job_id) in queued:  # a requeued task may hold the result of an earlier attempt
                gone_since.pop(i, None)
                continue
            else:
                outcome = _outcome(job)
                if outcome is None and time.monotonic() - gone_since.setdefault(i, time.monotonic()) < grace_s:
                    continue  # left the queue: give its result file a moment to appear on a shared disk
            codes[i] = _report(i, job, outcome, log)
            pending.discard(i)
        if not pending:
            break
        if deadline is not None and time.monotonic() > deadline:
            left = ", ".join(str(jobs[i].job_id) for i in sorted(pending))
            log(f"stopped waiting after {timeout_min:g} min (--slurm-wait-timeout); still queued or running: {left}. "
                "They go on: rerun the same command with --slurm-wait once they are done to see the summary")
            break
        time.sleep(poll_s)
    return codes


def _report(i: int, job, outcome: tuple[str, object] | None, log: Callable[[str], None]) -> int | None:
    """Log what went wrong with task ``i`` (nothing when it exited 0); its exit status or None."""
    where = f"task {i} (job {job.job_id})"
    err, out = job.paths.stderr, job.paths.stdout
    if outcome is None:
        state = ended_state(job.job_id) if _cluster(job) == "slurm" else getattr(job, "state", "unknown")
        log(f"{where} ended without a result: {state} (killed, e.g. kill -9 or out of memory, cancelled, or its "
            f"node was lost); log: {err}\n{_tail(err)}")
        return None
    kind, value = outcome
    if kind != "success":
        log(f"{where} failed; log: {err}\n" + "\n".join("    " + line for line in str(value).rstrip().splitlines()))
        return None
    rc = int(value or 0)
    if rc:
        log(f"{where} exited with status {rc} ({_STATUS.get(rc, 'error')}); log: {err}\n{_tail(err)}"
            + (f"\n    (stdout: {out})" if rc != 1 else ""))
    return rc


def submit_build(argv: Sequence[str], groups: Sequence[str], folder: str | os.PathLike, options: dict[str, Any],
                 wait: bool = False, log: Callable[[str], None] | None = None,
                 wait_timeout_min: float | None = None) -> int:
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
    codes = wait_all(jobs, log, timeout_min=wait_timeout_min)
    index_job = submit_commands(make_executor(folder / "%j", options, name="davis-c-index"), "davis_c.build",
                                [index_argv])[0]
    (index_code,) = wait_all([index_job], log, timeout_min=wait_timeout_min)
    failed = [g for g, c in zip(groups, codes) if c != 0]
    if failed:
        log(f"{len(failed)} build task(s) did not finish cleanly: {', '.join(failed)}; rerun the same command "
            "to retry them (complete shards are kept)")
    log(f"index written by task {index_job.job_id}" if index_code == 0 else "the index task failed")
    return 0 if not failed and index_code == 0 else 1
