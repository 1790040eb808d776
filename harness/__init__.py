"""Run VOS methods over DAVIS / DAVIS-C and score them exactly as the official DAVIS evaluator.

The public face (imported lazily, so ``import harness`` and ``--help`` stay fast)::

    from harness import j_measure, f_measure, evaluate_video      # metrics on masks in memory
    from harness import evaluate_results                          # a DAVIS results folder -> scores
    from harness import RunRequest, plan_run, execute, summary_table, load_method   # running methods
    from harness import score_predictions                         # scoring another tool's masks

Module map: ``metrics`` (exact J&F), ``evaluate`` (the official-format evaluator and its CLI), ``methods``
(method presets), ``planner`` (a run's plan: units, checks, run.json; executing the units), ``executor`` (one
unit: adapt, segment, score, write), ``units`` (the unit list and shards), ``data`` (data sources: a dataset root,
a DAVIS-C HDF5 file, a DAVIS-C folder tree),
``identity`` (what a unit was computed on), ``recovery`` (frames to recover after a temporal-suite event), ``options`` (checking settings against the model), ``results``
(unit records and run.json on disk), ``resolution`` (model input size), ``score`` (scoring another tool's
masks), ``protocols`` / ``submission`` (other benchmarks' scoring rules and server archives), ``devices``,
``slurm`` and ``estimate`` (scaling out), ``cli`` (the ``python -m harness.run`` command line; ``run`` only
starts it).
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["j_measure", "f_measure", "evaluate_video", "evaluate_results", "RunRequest", "plan_run", "execute",
           "summary_table", "load_method", "score_predictions"]

_HOME = {
    "j_measure": "harness.metrics",
    "f_measure": "harness.metrics",
    "evaluate_video": "harness.metrics",
    "evaluate_results": "harness.evaluate",
    "RunRequest": "harness.planner",
    "plan_run": "harness.planner",
    "execute": "harness.planner",
    "summary_table": "harness.planner",
    "load_method": "harness.methods",
    "score_predictions": "harness.score",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
