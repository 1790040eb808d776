"""Plan and run a benchmark: resolve everything up front, then run the units that are not done.

``plan_run`` does every check that can fail before any unit starts (method, data, variants, videos,
annotations, weights, TTT preset, the method's options against the model, a plugin model nobody allowed,
an incompatible earlier run in ``--out``, finished units computed on other data), takes the results lock
(``<out>/<method>/.run.lock``, one per ``--shard``) and writes ``run.json``;
``execute`` runs the pending units of this shard (in this process or in ``workers`` processes) with
a progress bar, and ``summary_table`` prints mean J&F per variant and the failures.
"""
from __future__ import annotations

import datetime as _dt
import functools
import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm import tqdm

from common.cli import raise_if_terminated
from common.locks import OutputLock
from common.threads import apply_threads, choose_threads
from harness.data import open_source, select_variants, select_videos
from harness.executor import (RunSetup, SetupError, UnitRunner, build_model, find_checkpoint, init_worker,
                             resolve_ttt, run_in_worker)
from harness.identity import check_done_units
from harness.methods import load_method
from harness.options import check_options, check_plugin
from harness.results import jf_summary, read_unit, write_run_json
from harness.units import Unit, make_units, pending_units, shard_units
from common.workers import stop_pool

__all__ = ["WorkerDied", "RunRequest", "Plan", "plan_run", "execute", "summary_table", "default_data", "RANDOM_INIT_BANNER",
           "run_lock_path", "check_sample_selection"]

RANDOM_INIT_BANNER = "RANDOM-INIT WEIGHTS (golden init): NOT A REAL MODEL, scores only test the pipeline"
DEFAULT_DATA = "davis_c.h5"
SAMPLE_DATA = "davis_c_sample.h5"  # what `python -m davis_c.build --sample` writes


class WorkerDied(RuntimeError):
    """A worker process vanished (e.g. killed by the out-of-memory killer)."""


@dataclass
class RunRequest:
    """The command line, as data (so tests and notebooks can run the harness without argparse)."""

    method: str | None = None
    config_file: str | None = None
    overrides: Sequence[str] = ()
    data: str | None = None
    annotations: str | None = None
    variants: Sequence[str] | None = None
    videos: Sequence[str] | None = None
    seeds: Sequence[int] = (1,)
    shard: tuple[int, int] = (0, 1)
    workers: int = 1
    out: str = "results"
    name: str | None = None
    checkpoint: str | None = None
    random_init: bool = False
    device: str | None = None
    save_masks: bool = False
    allow_plugin: bool = False   # a config file may name a 'package.module:function' model (runs its code)
    dataset: str | None = None  # davis_c.datasets name (None: DAVIS-2017, or what the layout shows)
    split: str | None = None  # the dataset's split (None: its usual evaluation split)
    threads: int | None = None  # CPU threads per process (None: common.threads' rule)


def run_lock_path(out: str | os.PathLike, method: str, shard: tuple[int, int] = (0, 1)) -> Path:
    """The lock file a run of ``method`` (one ``--shard``) holds under ``out``."""
    i, n = shard
    return Path(out) / method / (".run.lock" if n == 1 else f".run-shard{i}of{n}.lock")


@dataclass
class Plan:
    setup: RunSetup
    units: list[Unit]            # this shard's units (done or not)
    all_units: int               # size of the unsharded list
    pending: list[Unit]
    done_ok: int
    done_failed: int
    source_desc: str
    notices: list[str] = field(default_factory=list)
    runner: UnitRunner | None = None   # the in-process runner built while checking the weights
    lock: OutputLock | None = None     # held from planning to the end of execute()

    def release(self) -> None:
        """Free the results lock (``execute`` does it when it ends)."""
        if self.lock is not None:
            self.lock.release()


def default_data(notify: Callable[[str], None] = print) -> Path:
    """``./davis_c.h5`` if present, else the synthetic sample build ``./davis_c_sample.h5`` (built once,
    exactly as ``python -m davis_c.build --sample`` does)."""
    path = Path(DEFAULT_DATA)
    if path.is_file():
        return path
    sample = Path(SAMPLE_DATA)
    notify(f"note: no ./{DEFAULT_DATA}; using the synthetic sample build ./{SAMPLE_DATA} "
           f"(python -m davis_c.build --sample){'' if sample.is_file() else ', building it now'}")
    if not sample.is_file():
        from davis_c import build

        build.build(build.sample_root(), sample, log=notify)
    return sample


def check_sample_selection(variants: Sequence[str] | None, videos: Sequence[str] | None) -> None:
    """With no ``--data`` and no data built yet, check ``--videos`` / ``--variants`` against what the
    default sample will hold *before* building it (about a minute): a typo fails at once."""
    if Path(DEFAULT_DATA).is_file() or Path(SAMPLE_DATA).is_file() or not (variants or videos):
        return
    from davis_c import corruptions as C
    from davis_c.build import sample_root
    from davis_c.datasets import Davis2017

    what = f"{SAMPLE_DATA} (the default sample, not built yet)"
    if videos:
        select_videos(list(Davis2017(sample_root()).videos), videos, what)
    if variants:  # every variant a sample build can hold (one it cannot build is caught after the build)
        select_variants(["clean"] + [f"{s}/{n}" for s in C.STRENGTHS for n in C.CORRUPTIONS], variants, what)


def _toolkit_version() -> str:
    import davis_c

    return getattr(davis_c, "__version__", "unknown")


def plan_run(req: RunRequest, notify: Callable[[str], None] = print) -> Plan:
    """Resolve and check everything; raise SetupError / DataError / MethodError / RunMismatch on problems.

    Cheap checks come first (method, weights file, TTT preset), then the data, then the model is built
    (a checkpoint of another model fails here) and ``run.json`` is written or checked.
    """
    method, config = load_method(req.method, config_file=req.config_file, overrides=req.overrides)
    check_plugin(config["model"], req.overrides, req.allow_plugin,
                 f"--config {req.config_file}" if req.config_file else f"method {method!r}")
    name = req.name or method
    from harness.units import RecordError, check_method_name

    try:
        check_method_name(name, "--name")
    except RecordError as exc:
        raise SetupError(str(exc)) from None
    seeds = [int(s) for s in req.seeds]
    if not seeds:
        raise SetupError("--seeds: give at least one seed")
    checkpoint = None if req.random_init else find_checkpoint(config, req.checkpoint)
    ttt = resolve_ttt(config)
    device = req.device or ("cuda" if torch.cuda.is_available() else "cpu")
    threads = choose_threads(req.threads, req.workers)
    check_options(config)  # the loader's options, before any data is read or built
    if not req.data:
        check_sample_selection(req.variants, req.videos)  # before the default sample is built
    data = Path(req.data) if req.data else default_data(notify)
    source = open_source(data, req.annotations, req.dataset, req.split)
    lock = None
    try:
        variants = select_variants(source.variants, req.variants, str(data))
        videos = select_videos(source.videos, req.videos, str(data))
        source.check(videos, variants)
        units_all = make_units(name, variants, videos, seeds)
        units = shard_units(units_all, *req.shard)
        setup = RunSetup(method=name, config=config, ttt=ttt, checkpoint=str(checkpoint) if checkpoint else None,
                         random_init=req.random_init, device=device, source=source.spec(), out=str(req.out),
                         save_masks=req.save_masks, threads=threads.threads)
        apply_threads(threads.threads)  # this process runs the units when there is one worker
        # Built here, in the main process: a wrong checkpoint must stop the run before any unit.
        vos = build_model(config, checkpoint, req.random_init, device)
        check_options(config, vos, ttt)  # a bad --set value stops here, before run.json
        from common.checkpoint import sha256_of

        info = {"method": name, "config": {**config, "ttt_resolved": ttt}, "toolkit_version": _toolkit_version(),
                "checkpoint": str(checkpoint) if checkpoint else None,
                "checkpoint_sha256": sha256_of(checkpoint) if checkpoint else None,
                "random_init": req.random_init, "device": device, "seeds": seeds,
                "threads": threads.threads,  # per process (common.threads); not part of the run identity
                "variants": list(variants), "videos": list(videos),  # the plan: the leaderboard's expected units
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        notices: list[str] = []
        if req.random_init:
            info["note"] = RANDOM_INIT_BANNER
            notices.append(RANDOM_INIT_BANNER)
        # one run per (method, shard) writes into --out at a time; LockHeld names the holder
        lock = OutputLock(run_lock_path(req.out, name, req.shard), f"the results of {name!r} in {req.out}")
        check_done_units(units, str(req.out), source, str(data))  # finished units of other data: refused
        write_run_json(req.out, name, info)
        pending, ok, failed = pending_units(units, req.out)
    except BaseException:
        if lock is not None:
            lock.release()
        source.close()
        raise
    runner = UnitRunner(setup, vos=vos, source=source)
    return Plan(setup=setup, units=units, all_units=len(units_all), pending=pending, done_ok=ok,
                done_failed=failed, source_desc=source.describe(), notices=notices, runner=runner, lock=lock)


def execute(plan: Plan, workers: int = 1, progress: bool = True, slots: Sequence | None = None) -> list[dict]:
    """Run the plan's pending units; returns their records (ok and failed).

    ``slots`` (``harness.devices.plan_workers``) gives each worker process its device and threads;
    default: every worker on the plan's device with an equal share of the cores.
    """
    records: list[dict] = []
    todo = plan.pending
    bar = tqdm(total=len(todo), unit="unit", desc=plan.setup.method, disable=not progress or not todo,
               dynamic_ncols=True, file=sys.stderr)
    failed = 0

    def _done(rec: dict) -> None:
        nonlocal failed
        raise_if_terminated()
        records.append(rec)
        failed += rec["status"] == "failed"
        last = f"J&F {100 * rec['JF']:.1f}" if rec.get("JF") is not None else "J&F failed"  # percent, as every table
        if rec["status"] == "ok" and rec.get("protocol") in ("jhmdb-pck", "vip-miou"):  # harness.correspondence
            last = f"PCK@0.1 {rec['PCK@0.1']}" if "pck_dist" in rec else f"mIoU {rec.get('mIoU')}"
        bar.set_postfix_str(f"{rec['variant']} {rec['video']} s{rec['seed']}: {last}; failed {failed}")
        bar.update(1)

    try:
        if workers <= 1 or len(todo) <= 1:
            runner = plan.runner or UnitRunner(plan.setup)
            runner.progress = progress  # frames / TTT iterations of the running unit, under the units bar
            for unit in todo:
                _done(runner.run(unit))
        else:
            if plan.runner is not None:  # free the checking copy; each worker loads its own
                plan.runner.close()
                plan.runner = None
            from harness.devices import assign_workers, init_assigned_worker, usable_cores

            if slots is None:
                slots = assign_workers(workers, [plan.setup.device], usable_cores())
            ctx = mp.get_context("spawn")  # fresh interpreters: safe with torch threads, CUDA and HDF5
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init_assigned_worker,
                                       initargs=(plan.setup, list(slots), ctx.Value("i", 0),
                                                 functools.partial(init_worker, parent=os.getpid())))
            try:
                futures = [pool.submit(run_in_worker, unit) for unit in todo]
                for fut in as_completed(futures):
                    _done(fut.result())
            except BrokenProcessPool as exc:
                stop_pool(pool)
                raise WorkerDied("a worker process died (killed, or out of host memory?); finished units "
                                 "are kept: rerun the same command to resume") from exc
            except BaseException:  # Ctrl-C, SIGTERM, a full disk: end the workers now, keep finished units
                stop_pool(pool)
                raise
            pool.shutdown(wait=True)
    finally:
        bar.close()
        if plan.runner is not None:
            plan.runner.close()
        plan.release()
    return records


def summary_table(plan: Plan) -> str:
    """Mean J&F per variant over this shard's units (``harness.results.jf_summary``, the table
    ``harness.score`` prints too), plus the list of failed units."""
    items = [(unit, unit.variant, read_unit(unit.path(plan.setup.out))) for unit in plan.units]
    if any(rec is not None and rec.get("protocol") in ("jhmdb-pck", "vip-miou") for _, _, rec in items):
        return _propagation_summary(plan, items)
    return jf_summary(f"{plan.setup.method}: mean scores x100 per variant ({plan.source_desc})", items,
                      banner=RANDOM_INIT_BANNER if plan.setup.random_init else None)


def _propagation_summary(plan: Plan, items: list) -> str:
    """JHMDB / VIP (harness.correspondence): the metrics pooled over the set, per variant."""
    from harness.correspondence import summary_line

    by_variant: dict[str, list] = {}
    failures = []
    for unit, variant, rec in items:
        if rec is None:
            continue
        if rec["status"] == "failed":
            failures.append(f"  {unit}: {rec.get('error')}")
        else:
            by_variant.setdefault(variant, []).append(rec)
    text = [f"{plan.setup.method}: label propagation, x100 ({plan.source_desc})"]
    text += [summary_line(variant, recs) for variant, recs in by_variant.items()]
    if plan.setup.random_init:
        text.append(f"!! {RANDOM_INIT_BANNER}")
    if failures:
        text.append(f"{len(failures)} failed unit(s) (rerun the same command to retry them):")
        text.extend(failures)
    return "\n".join(text)
