"""The SLURM path against a real slurmctld/slurmd (``.ci/slurm-up``: one node on 127.0.0.1, no accounting).

Marked ``slurm`` (not run by default: ``pytest -m slurm``).  Skipped where no cluster answers (a laptop);
under CI=true a missing cluster FAILS them: ``.ci/run`` starts one.  Small on purpose (a tiny DAVIS-C,
weight-free label propagation): the whole file takes a few minutes on 2 cores.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from unit_records import comparable_units

from davis_c import build as B
from davis_c.sample import make_sample

pytestmark = pytest.mark.slurm
REPO = Path(__file__).resolve().parents[1]
FAST = ("--method", "labelprop", "--no-progress", "--threads", "1")
SLURM = "timeout_min=10,cpus_per_task=1,mem_gb=1"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


@pytest.fixture(scope="module")
def cluster() -> None:
    """A SLURM controller with an idle or busy node, and submitit; skipped (failed in CI) without."""
    why = None
    if importlib.util.find_spec("submitit") is None:
        why = "submitit is not installed (pip install -e '.[slurm]')"
    elif shutil.which("sbatch") is None or shutil.which("squeue") is None:
        why = "no SLURM client (sbatch, squeue) on this machine"
    else:
        try:
            res = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True, timeout=20)
            states = res.stdout.split()
        except (OSError, subprocess.SubprocessError) as exc:
            states, res = [], exc
        if not any(s.rstrip("*") in ("idle", "mix", "alloc") for s in states):
            why = f"no SLURM node is up (sinfo: {getattr(res, 'stderr', res)!s:.200})"
    if why:
        if _in_ci():
            pytest.fail(f"CI is set but {why}: .ci/run starts a one-node cluster with .ci/slurm-up")
        pytest.skip(f"{why}; start one with .ci/slurm-up")


def _env(*paths: Path, **variables: str) -> dict:
    """The environment of a toolkit command (the tasks inherit it): the repository (and ``paths``) on the
    path, one thread."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, (REPO, *paths))), OMP_NUM_THREADS="1", **variables)


def _cli(*argv, cwd: Path, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """A toolkit command in a fresh process, as a user types it."""
    env = env or _env()
    return subprocess.run([sys.executable, "-m", *map(str, argv)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)




@pytest.fixture(scope="module")
def work(tmp_path_factory, cluster) -> Path:
    """A folder on this node's disk (the one-node cluster's "shared" filesystem) with a tiny DAVIS-C:
    2 videos x 4 frames x 32x48, 1 corruption at 2 strengths (6 units)."""
    tmp = tmp_path_factory.mktemp("slurm_cluster")
    root = make_sample(tmp / "DAVIS", videos=2, frames=4, height=32, width=48, seed=5)
    B.build(root, tmp / "c.h5", corruptions=["gaussian_noise"], strengths=["low", "high"], progress=False,
            log=lambda m: None)
    return tmp


@pytest.fixture(scope="module")
def plain(work) -> dict:
    res = _cli("harness.run", *FAST, "--data", "c.h5", "--out", "plain", cwd=work)
    assert res.returncode == 0, res.stderr
    ref = comparable_units(work / "plain")
    assert len(ref) == 6
    return ref


@pytest.mark.parametrize("tasks", [None, 3])
def test_run_on_slurm_equals_a_plain_run(work, plain, tasks):
    out = f"arr{tasks}"
    extra = () if tasks is None else ("--tasks", tasks)
    res = _cli("harness.run", *FAST, "--data", "c.h5", "--out", out, "--slurm", SLURM, *extra, "--slurm-wait",
               "--slurm-wait-timeout", 8, cwd=work, timeout=600)
    assert res.returncode == 0, res.stderr
    n = tasks or 1
    assert f"submitted {n} array task(s) (6 of 6 unit(s) to run)" in res.stderr
    assert "high/gaussian_noise  " in res.stdout  # the summary table
    assert comparable_units(work / out) == plain
    # logs: <out>/<method>/slurm/<job>_<task>/<job>_<task>_0_log.{out,err} (the array's sbatch script in
    # <job>/); one task is submitted as a plain job: <job>/<job>_0_log.{out,err}
    folders = sorted(p for p in (work / out / "labelprop" / "slurm").iterdir() if p.is_dir())
    logs = [p for p in folders if (p / f"{p.name}_0_log.err").is_file()]
    if n == 1:
        assert len(folders) == 1 and logs == folders and folders[0].name.isdigit()
    else:
        array = folders[0].name
        assert array.isdigit() and (folders[0] / f"{array}_submission.sh").is_file()
        assert [p.name for p in logs] == [f"{array}_{i}" for i in range(n)]
    run = json.loads((work / out / "labelprop" / "run.json").read_text())
    assert run["threads"] == 1
    assert {json.loads(p.read_text())["timing"]["threads"] for p in (work / out / "labelprop").rglob("seed*.json")} == {1}


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.h5"))}


def test_build_on_slurm_is_byte_identical(work):
    kw = ("--root", "DAVIS", "--corruptions", "gaussian_noise", "glass_blur", "--strengths", "high", "--quiet")
    res = _cli("davis_c.build", *kw, "--out", "local.h5", cwd=work)
    assert res.returncode == 0, res.stderr
    res = _cli("davis_c.build", *kw, "--out", "cluster.h5", "--slurm", SLURM, "--slurm-wait", cwd=work, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "submitted 3 build task(s)" in res.stderr and "index written" in res.stderr
    ref = _hashes(work / "local_shards")
    assert len(ref) == 3 and _hashes(work / "cluster_shards") == ref
    assert (work / "cluster.h5").is_file()


def _squeue(job: str) -> list[str]:
    res = subprocess.run(["squeue", "-h", "-r", "-j", job, "-o", "%i %T"], capture_output=True, text=True)
    return res.stdout.split("\n") if res.stdout.strip() else []


def _wait_until(what, timeout: float = 120.0, step: float = 0.5):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = what()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


_HOLD_HOOK = """\
import os, sys, time

_hold = os.environ.get("DAVIS_C_TEST_HOLD")
if _hold and "SLURM_JOB_ID" in os.environ and os.environ.get("SLURM_RESTART_COUNT", "0") == "0":
    import importlib.abc
    import importlib.util

    def _wait():  # once: say where we are (our pid), then wait while the hold file exists
        if getattr(_wait, "done", False):
            return
        _wait.done = True
        with open(_hold + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(_hold + ".tmp", _hold + ".reached")
        t0 = time.monotonic()
        while os.path.exists(_hold) and time.monotonic() - t0 < 300:
            time.sleep(0.05)

    class _HoldFirstUnit(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "harness.executor":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            exec_module = spec.loader.exec_module

            def patched(module):
                exec_module(module)
                run = module.UnitRunner.run

                def held(self, unit):
                    _wait()
                    return run(self, unit)

                module.UnitRunner.run = held

            spec.loader.exec_module = patched
            return spec

    sys.meta_path.insert(0, _HoldFirstUnit())
"""


def _held_env(work: Path, name: str) -> tuple[dict, Path]:
    """An environment whose SLURM task, in its first attempt, stops before its first unit (inside the CLI,
    model loaded, lock taken) until the returned file is removed: a ``sitecustomize`` on the path wraps
    ``harness.executor.UnitRunner.run`` and writes the task's pid to ``<file>.reached``.  So a signal
    sent to the task lands while it runs, however fast the units are (these take under a second)."""
    hook = work / "hold_hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(_HOLD_HOOK)
    hold = work / f"hold-{name}"
    hold.write_text("")
    return _env(hook, DAVIS_C_TEST_HOLD=str(hold)), hold


def _held_pid(hold: Path) -> int:
    """The pid of the held task's python, once it waits before its first unit."""
    reached = hold.with_name(hold.name + ".reached")
    return int(_wait_until(lambda: reached.is_file() and reached.read_text(), timeout=180, step=0.05))


def _start_waiting_run(work: Path, out: str, env: dict) -> subprocess.Popen:
    """``harness.run --slurm ... --slurm-wait`` of 18 units in one task, in the background."""
    return subprocess.Popen([sys.executable, "-m", "harness.run", *FAST, "--data", "c.h5", "--out", out,
                             "--seeds", "1", "2", "3", "--slurm", SLURM, "--slurm-wait", "--slurm-wait-timeout", "8"],
                            cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _first_job(folder: Path) -> str:
    """The name of the first job folder submitit makes under ``folder`` (``<job>`` or ``<job>_<task>``)."""
    return _wait_until(lambda: next((p.name for p in folder.iterdir() if p.is_dir()), None)
                       if folder.is_dir() else None, timeout=180)


def test_scancel_then_a_rerun_submits_only_the_unfinished_shard(work, plain):
    """Task 1 of 3 is cancelled before it starts (array_parallelism=1 keeps it queued while task 0, held
    before its first unit, runs); the others finish.  A rerun submits shard 1 alone, and the results equal
    a plain run's."""
    out = "cancel"
    args = ("harness.run", *FAST, "--data", "c.h5", "--out", out, "--tasks", 3)
    env, hold = _held_env(work, out)
    try:
        sub = _cli(*args, "--slurm", SLURM + ",array_parallelism=1", cwd=work, env=env)
        assert sub.returncode == 0, sub.stderr
        job = sub.stderr.split(" as job ")[1].split(";")[0]
        _held_pid(hold)
        subprocess.run(["scancel", f"{job}_1"], check=True)
    finally:
        hold.unlink(missing_ok=True)
    _wait_until(lambda: not _squeue(job), timeout=300)
    done = comparable_units(work / out)
    assert len(done) == 4  # shards 0 and 2
    rerun = _cli(*args, "--slurm", SLURM, "--slurm-wait", cwd=work, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "submitted 1 array task(s) (shard(s) 1 of 3; the others are done) (2 of 6 unit(s) to run)" in rerun.stderr
    assert comparable_units(work / out) == plain


def test_a_task_killed_with_kill_9_is_reported_with_its_log(work):
    """No accounting here (no slurmdbd): the wait still ends, and names the task, how it ended and its log."""
    out = "killed"
    env, hold = _held_env(work, out)
    proc = _start_waiting_run(work, out, env)
    try:
        folder = work / out / "labelprop" / "slurm"
        job_task = _first_job(folder)
        os.kill(_held_pid(hold), 9)  # held before its first unit: it cannot have finished
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        hold.unlink(missing_ok=True)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, stderr
    log = folder / job_task / f"{job_task}_0_log.err"
    assert f"task 0 (job {job_task}) ended without a result: " in stderr, stderr
    assert "killed by signal 9" in stderr or "FAILED" in stderr, stderr
    assert f"log: {log}" in stderr


def test_a_requeued_task_is_waited_for_not_taken_as_finished(work):
    """``scontrol requeue`` (what preemption and submitit's time-limit handling do): the running attempt is
    stopped by SIGTERM (the CLI ends it in order, status 143), SLURM runs the task again, and the wait
    returns only when that attempt has finished every unit."""
    out = "requeued"
    env, hold = _held_env(work, out)  # the first attempt waits inside the CLI, before its first unit
    proc = _start_waiting_run(work, out, env)
    try:
        folder = work / out / "labelprop" / "slurm"
        job = _first_job(folder)
        _held_pid(hold)
        subprocess.run(["scontrol", "requeue", job], check=True)
        # SLURM holds the requeued task for 2 minutes (Reason=BeginTime); whatever the stopped attempt left
        # in its folder, the wait (polling every 5 s) must not take it for the task's end
        _wait_until(lambda: "PENDING" in " ".join(_squeue(job)), timeout=60, step=0.2)
        time.sleep(12)
        assert proc.poll() is None, proc.communicate()[1]
        hold.unlink()  # (the second attempt is not held: SLURM_RESTART_COUNT=1)
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
        stdout, stderr = proc.communicate(timeout=400)
    finally:
        hold.unlink(missing_ok=True)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    units = comparable_units(work / out)
    assert len(units) == 18
    restarts = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True).stdout
    assert "Restarts=1" in restarts, restarts
