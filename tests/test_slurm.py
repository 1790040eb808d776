"""The SLURM path's behaviour on a cluster, without one: submitit's in-process executor for the
submission, submitit's own signal handler for requeues and time limits, fake jobs and fake SLURM
client commands for the wait.  The same behaviours against a real slurmctld/slurmd:
tests/test_slurm_cluster.py."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from unit_records import comparable_units

from common import slurm as S
from davis_c import build as B
from davis_c.sample import make_sample
from harness.cli import main

pytestmark = pytest.mark.skipif(importlib.util.find_spec("submitit") is None,
                                reason="submitit not installed (pip install -e '.[slurm]')")
FAST = ("--method", "labelprop", "--no-progress")


def _run(*argv) -> int:
    return main([*map(str, argv)])




@pytest.fixture(scope="module")
def small_c(tmp_path_factory) -> Path:
    """2 videos x 5 frames x 40x64 with 1 corruption at 2 strengths: 6 units a seed."""
    tmp = tmp_path_factory.mktemp("slurm")
    root = make_sample(tmp / "DAVIS", videos=2, frames=5, height=40, width=64, seed=4)
    h5 = tmp / "small_c.h5"
    B.build(root, h5, corruptions=["gaussian_noise"], strengths=["low", "high"], progress=False, log=lambda m: None)
    return h5


# ------------------------------------------------------------------------------ defect 1: the plan's lock
def test_one_task_with_wait_is_the_plain_run(small_c, tmp_path, capsys):
    """The default --tasks 1 with --slurm-wait: the submitter must not keep the lock its one task takes."""
    common = (*FAST, "--data", small_c)
    assert _run(*common, "--out", tmp_path / "plain") == 0
    capsys.readouterr()
    assert _run(*common, "--out", tmp_path / "arr", "--slurm", "cluster=debug", "--slurm-wait") == 0
    err = capsys.readouterr().err
    assert "in use by" not in err and "submitted 1 array task(s) (6 of 6 unit(s) to run)" in err
    assert comparable_units(tmp_path / "arr") == comparable_units(tmp_path / "plain")
    assert not list((tmp_path / "arr" / "labelprop").glob(".run*.lock"))


# ------------------------------------------------------------------------------ defect 4: rerun submits less
def test_rerun_submits_only_the_unfinished_shards(small_c, tmp_path, capsys):
    out = tmp_path / "arr"
    args = (*FAST, "--data", small_c, "--out", out, "--slurm", "cluster=debug", "--tasks", 3, "--slurm-wait")
    assert _run(*args) == 0
    # shard 1 of 3 is units 1 and 4 of the unit list (variant, video, seed order): lose one of them
    units = sorted((out / "labelprop").rglob("seed*.json"))
    assert len(units) == 6
    from harness.units import make_units, shard_units

    plan = make_units("labelprop", ["clean", "low/gaussian_noise", "high/gaussian_noise"],
                      ["synth-000", "synth-001"], [1])
    lost = shard_units(plan, 1, 3)[0].path(out)
    lost.unlink()
    logs_before = set((out / "labelprop" / "slurm").iterdir())
    capsys.readouterr()
    assert _run(*args) == 0
    err = capsys.readouterr().err
    assert "submitted 1 array task(s) (shard(s) 1 of 3; the others are done) (1 of 6 unit(s) to run)" in err
    new_logs = set((out / "labelprop" / "slurm").iterdir()) - logs_before
    assert len(new_logs) == 1 and lost.is_file()


def test_shards_to_submit():
    from harness.slurm import shards_to_submit

    units = list(range(10))
    assert shards_to_submit(units, [], 3) == []
    assert shards_to_submit(units, [4, 7], 3) == [1]            # 4 and 7 are both in shard 1 (1, 4, 7)
    assert shards_to_submit(units, [0, 8, 9], 4) == [0, 1]      # 8 -> shard 0, 9 -> shard 1
    assert shards_to_submit(units, units, 4) == [0, 1, 2, 3]


# ------------------------------------------------------------------------------ defect 2: requeue != result
FAKE_CLI = '''
import os, signal, sys, time
from common.cli import cli_main

@cli_main("fake")
def main(argv):
    """A toolkit-like CLI: SIGTERM becomes an orderly stop with status 143 (common.cli)."""
    if argv[0] == "usr2":                     # SLURM's time-limit / preemption warning (--signal=USR2@90)
        os.kill(os.getpid(), signal.SIGUSR2)
        for _ in range(200):                  # the signal is handled between these steps
            time.sleep(0.01)
        return 0
    if argv[0] == "argparse":
        raise SystemExit(2)
    return int(argv[0])
'''


class _FakeEnv:
    """What submitit's SignalHandler needs of a job environment; ``_requeue`` does what ``scontrol
    requeue`` does to a running job: SLURM sends it SIGTERM."""

    global_rank = 0

    def __init__(self) -> None:
        self.requeued = []

    def _requeue(self, countdown: int) -> None:
        self.requeued.append(countdown)
        os.kill(os.getpid(), signal.SIGTERM)


@pytest.fixture
def fake_task(tmp_path, monkeypatch):
    """A CommandTask running tests' fake CLI under submitit's own USR2 handler (as in a SLURM task)."""
    from submitit.core.job_environment import SignalHandler
    from submitit.core.utils import DelayedSubmission, JobPaths

    (tmp_path / "fake_cli_mod.py").write_text(textwrap.dedent(FAKE_CLI))
    monkeypatch.syspath_prepend(str(tmp_path))
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGUSR2, signal.SIGTERM)}
    env = _FakeEnv()

    def make(timeouts_left: int):
        task = S.CommandTask("fake_cli_mod", tmp_path, timeout_min=1)
        delayed = DelayedSubmission(task, ["usr2"])
        delayed.set_timeout(1, timeouts_left)  # 1 min: any run counts as timed out
        paths = JobPaths(tmp_path / "job", job_id="7_0", task_id=0)
        paths.folder.mkdir(parents=True, exist_ok=True)
        handler = SignalHandler(env, paths, delayed)
        signal.signal(signal.SIGUSR2, handler.checkpoint_and_try_requeue)
        return task, paths

    yield make, env
    for sig, h in previous.items():
        signal.signal(sig, h)


def test_a_requeued_task_leaves_no_result(fake_task):
    make, env = fake_task
    task, paths = make(timeouts_left=3)
    cwd = os.getcwd()
    try:
        # submitit requeues (scontrol requeue -> SIGTERM) and exits the attempt: no exit status may come
        # back as the task's result, though the CLI turns the SIGTERM into "terminated, 143"
        with pytest.raises(SystemExit):
            task(["usr2"])
    finally:
        os.chdir(cwd)
    assert env.requeued == [2]                     # one time limit used of 3
    assert paths.submitted_pickle.is_file()        # the checkpoint the requeued attempt runs


def test_a_task_cut_by_its_time_limit_says_so(fake_task):
    make, env = fake_task
    task, _ = make(timeouts_left=0)                # submitit's last time limit: no requeue
    cwd = os.getcwd()
    try:
        with pytest.raises(S.TaskCut, match=r"cut by the time limit \(timeout_min=1\).*larger timeout_min"):
            task(["usr2"])
    finally:
        os.chdir(cwd)
    assert env.requeued == []


def test_task_exit_statuses_without_submitit_signals(tmp_path, monkeypatch):
    (tmp_path / "fake_cli_mod2.py").write_text(textwrap.dedent(FAKE_CLI))
    monkeypatch.syspath_prepend(str(tmp_path))
    cwd = os.getcwd()
    try:
        task = S.CommandTask("fake_cli_mod2", tmp_path)
        assert task(["0"]) == 0 and task(["3"]) == 3
        assert task(["argparse"]) == 2              # an argument error is a status, not a crash
    finally:
        os.chdir(cwd)


# ------------------------------------------------------------------------------ defect 3: the wait
class _Job:
    """A SLURM array task as wait_all sees it (submitit's SlurmJob: job_id, paths)."""

    def __init__(self, folder: Path, job_id: str) -> None:
        self.job_id = job_id
        folder.mkdir(parents=True, exist_ok=True)
        self.paths = SimpleNamespace(result_pickle=folder / f"{job_id}_result.pkl",
                                     stderr=folder / f"{job_id}_0_log.err", stdout=folder / f"{job_id}_0_log.out")

    def finish(self, outcome) -> None:
        from submitit.core.utils import cloudpickle_dump

        cloudpickle_dump(outcome, self.paths.result_pickle)


def test_wait_reports_every_way_a_task_ends(tmp_path, monkeypatch):
    jobs = [_Job(tmp_path / f"9_{i}", f"9_{i}") for i in range(5)]
    jobs[0].finish(("success", 0))
    jobs[1].finish(("success", 2))
    jobs[1].paths.stderr.write_text("harness.run: error: results/x/.run.lock: in use by pid 12\n")
    tb = "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: first line\nsecond line of it"
    jobs[2].finish(("error", tb))
    jobs[3].paths.stderr.write_text("step 1\nstep 2\n")  # killed (kill -9): no result file
    queue = [{"9_3", "9_4"}, {"9_4"}, {"9_4"}]

    def queued(ids):
        return queue.pop(0) if queue else set()

    monkeypatch.setattr(S, "queued_jobs", queued)
    monkeypatch.setattr(S, "ended_state", lambda job_id: f"FAILED, killed by signal 9 ({job_id})")
    monkeypatch.setattr(S.time, "sleep", lambda s: None)
    jobs[4].finish(("success", 1))  # finished while the others were looked at
    logs = []
    codes = S.wait_all(jobs, logs.append, grace_s=0)
    assert codes == [0, 2, None, None, 1]
    text = "\n".join(logs)
    assert f"task 1 (job 9_1) exited with status 2 (error); log: {jobs[1].paths.stderr}" in text
    assert "in use by pid 12" in text                                     # the end of its log
    assert "ValueError: first line\n    second line of it" in text        # the whole error, not its first line
    assert "task 3 (job 9_3) ended without a result: FAILED, killed by signal 9 (9_3)" in text
    assert f"log: {jobs[3].paths.stderr}" in text and "    step 2" in text
    assert "task 0" not in text


def test_a_result_before_a_requeue_is_not_the_end(tmp_path, monkeypatch):
    """SLURM requeued the task (preemption, scontrol requeue): the first attempt stopped on SIGTERM and
    left status 143; the task is back in the queue, so the wait goes on until the last attempt ends."""
    job = _Job(tmp_path / "8_0", "8_0")
    job.finish(("success", 143))
    polls = []

    def queued(ids):
        polls.append(1)
        if len(polls) == 3:
            job.finish(("success", 0))       # the requeued attempt finished the work
        return {"8_0"} if len(polls) <= 3 else set()

    monkeypatch.setattr(S, "queued_jobs", queued)
    monkeypatch.setattr(S.time, "sleep", lambda s: None)
    logs = []
    assert S.wait_all([job], logs.append, grace_s=0) == [0]
    assert len(polls) == 4 and logs == []


def test_wait_has_its_own_timeout(tmp_path, monkeypatch):
    jobs = [_Job(tmp_path / "5_0", "5_0")]
    monkeypatch.setattr(S, "queued_jobs", lambda ids: {"5_0"})            # running for ever
    logs = []
    t0 = time.monotonic()
    assert S.wait_all(jobs, logs.append, timeout_min=0.0005, poll_s=0.01) == [None]
    assert time.monotonic() - t0 < 30
    assert "stopped waiting after 0.0005 min (--slurm-wait-timeout); still queued or running: 5_0" in logs[-1]


def test_wait_needs_no_accounting(tmp_path, monkeypatch):
    """squeue and scontrol answer without slurmdbd; sacct is asked only when scontrol forgot the job."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    scripts = {
        "squeue": 'echo "12_0 RUNNING"; echo "12_2 PENDING"',
        "scontrol": 'if [ "$4" = 12_1 ]; then echo "JobId=13 ArrayJobId=12 ArrayTaskId=1 JobState=FAILED '
                    'Reason=NonZeroExitCode ExitCode=0:9 RunTime=00:00:05"; else exit 1; fi',
        "sacct": 'echo "Slurm accounting storage is disabled" >&2; exit 1',
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n{body}\n')
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    assert S.queued_jobs(["12_0", "12_1", "12_2"]) == {"12_0", "12_2"}
    assert S.ended_state("12_1") == "FAILED, killed by signal 9, reason NonZeroExitCode"
    assert "sacct" not in calls.read_text()
    assert S.ended_state("12_5").startswith("unknown (the job is gone from squeue and scontrol; no accounting")
    assert "sacct -n -P -X -j 12_5" in calls.read_text()


def test_wait_without_squeue_keeps_waiting(tmp_path, monkeypatch):
    """No answer from SLURM (controller restarting) is not the end of a task."""
    jobs = [_Job(tmp_path / "6_0", "6_0")]
    answers = [None, None, set()]
    monkeypatch.setattr(S, "queued_jobs", lambda ids: answers.pop(0) if answers else set())
    monkeypatch.setattr(S, "ended_state", lambda job_id: "COMPLETED")
    monkeypatch.setattr(S.time, "sleep", lambda s: None)
    logs = []
    assert S.wait_all(jobs, logs.append, grace_s=0) == [None]
    assert answers == [] and "ended without a result: COMPLETED" in logs[0]


# ------------------------------------------------------------------------------ the submission's options
def test_wait_options_go_with_slurm(small_c, tmp_path, capsys):
    assert _run(*FAST, "--data", small_c, "--out", tmp_path, "--slurm-wait-timeout", 5) == 2
    assert "go with --slurm" in capsys.readouterr().err
    assert S.strip_options(["--method", "m", "--slurm-wait-timeout", "5", "--slurm-wait", "--x"]) == ["--method", "m",
                                                                                                      "--x"]


def test_slurm_path_passes_every_run_option(small_c, tmp_path, capsys, monkeypatch):
    """--threads, --dataset, --split and --allow-plugin reach the check on the submitting machine."""
    seen = {}
    import harness.planner as P

    real = P.plan_run

    def spy(req, notify=print):
        seen.update(vars(req))
        return real(req, notify)

    monkeypatch.setattr(P, "plan_run", spy)
    assert _run(*FAST, "--data", small_c, "--out", tmp_path, "--threads", 1, "--variants", "clean",
                "--slurm", "cluster=debug", "--slurm-wait") == 0
    assert seen["threads"] == 1 and "dataset" in seen and "allow_plugin" in seen
    run = json.loads((tmp_path / "labelprop" / "run.json").read_text())
    assert run["threads"] == 1
