"""Leaderboard tables of the label-propagation benchmarks: JHMDB pose (PCK) and VIP parts (mIoU), and their "-C".

Unit records of ``harness.correspondence`` (protocol ``jhmdb-pck`` / ``vip-miou``) do not carry J&F; their
set-level metric pools over the videos (per-joint distances for PCK, one confusion histogram for mIoU), so it
is computed here per (method, variant) with :func:`harness.correspondence.pooled_scores`:

* ``propagation.csv``: per method and variant, PCK@0.1 / PCK@0.2 (JHMDB) or mIoU, pixel accuracy (VIP), the
  settings that made them (temperature setting, VIP label mode) and, for a corrupted variant, the value
  relative to the same method's clean value (percent of clean);
* ``propagation_strength.csv``: per method and strength, the mean over corruptions and its relative value;
* a Markdown section with both, next to the published CRW numbers.

Units: as the reference scripts print them, unit records hold PCK in percent (``eval_pck.py``) and the VIP
metrics as fractions (``eval_vip.py``); the tables here show both in percent.

Published numbers (CRW, Jabri et al., NeurIPS 2020, arXiv 2006.14613, as quoted in videowalk issue #10; not
re-checked against the PDF): JHMDB PCK@0.1 59.3, PCK@0.2 84.9 with the released code's recipe (never
published as a command); VIP mIoU 38.6, label-resize mode unknown (the released code resizes labels
bilinearly, ``released``; whether that produced 38.6 is not verified).  They are shown on the clean row of
the ``crw`` method only, and never for random-init runs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.results import iter_unit_files

__all__ = ["PUBLISHED", "PROTOCOLS", "PropagationTables", "load_propagation", "propagation_markdown"]

PROTOCOLS = ("jhmdb-pck", "vip-miou")
_SOURCE = "CRW paper (NeurIPS 2020, arXiv 2006.14613) as quoted in videowalk issue #10; not re-checked against the PDF"
#: (method, protocol) -> published numbers with their source
PUBLISHED: dict[tuple[str, str], dict[str, Any]] = {
    ("crw", "jhmdb-pck"): {"PCK@0.1": 59.3, "PCK@0.2": 84.9, "source": _SOURCE},
    ("crw", "vip-miou"): {"mIoU": 38.6, "source": _SOURCE + "; label-resize mode that produced it not verified"},
}
_METRICS = {"jhmdb-pck": ("PCK@0.1", "PCK@0.2"), "vip-miou": ("mIoU", "pixel_acc")}


@dataclass
class PropagationTables:
    variants: pd.DataFrame   # one row per (method, variant)
    strengths: pd.DataFrame  # one row per (method, strength)
    problems: list[str]

    def __bool__(self) -> bool:
        return len(self.variants) > 0


def is_propagation_record(record: dict) -> bool:
    return record.get("protocol") in PROTOCOLS


def _records(results: Path) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for method_dir in sorted(p for p in results.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in iter_unit_files(results, method_dir.name):
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # reported by leaderboard.results
            if isinstance(rec, dict) and is_propagation_record(rec):
                groups.setdefault((method_dir.name, str(rec.get("variant"))), []).append(rec)
    return groups


def _strength(variant: str) -> str:
    return "clean" if variant == "clean" else variant.split("/")[0]


def load_propagation(results: str | Path) -> PropagationTables:
    """Pooled metrics of every (method, variant) with label-propagation records under ``results``."""
    from harness.pooled import ProtocolError, pooled_scores
    from harness.keypoints import PCKError

    rows, problems = [], []
    for (method, variant), recs in sorted(_records(Path(results)).items()):
        failed = sum(r.get("status") != "ok" for r in recs)
        try:
            s = pooled_scores(recs)
        except (PCKError, ProtocolError) as exc:
            problems.append(f"{method} {variant}: {exc}")
            continue
        if not s:
            problems.append(f"{method} {variant}: no unit ok ({failed} failed)")
            continue
        m1, m2 = _METRICS[s["protocol"]]
        rows.append({"method": method, "dataset": recs[0].get("dataset"), "protocol": s["protocol"],
                     "variant": variant, "strength": _strength(variant), "metric": m1, "value": s[m1],
                     "metric2": m2, "value2": s[m2], "videos": s["videos"], "seeds": s["seeds"], "failed": failed,
                     "temperature_setting": s.get("temperature_setting"), "label_mode": s.get("label_mode"),
                     "random_init": any(r.get("random_init") for r in recs)})
    cols = ["method", "dataset", "protocol", "variant", "strength", "metric", "value", "relative", "metric2", "value2",
            "relative2", "videos", "seeds", "failed", "temperature_setting", "label_mode", "random_init"]
    df = pd.DataFrame(rows, columns=[c for c in cols if not c.startswith("relative")])
    for value, rel in (("value", "relative"), ("value2", "relative2")):
        clean = df[df.variant == "clean"].set_index(["method", "protocol"])[value]
        df[rel] = [100 * v / clean[(m, p)] if (m, p) in clean.index and clean[(m, p)] else np.nan
                   for m, p, v in zip(df.method, df.protocol, df[value])]
    order = {"clean": 0, "low": 1, "med": 2, "high": 3}
    df = df.assign(_o=df.strength.map(lambda s: order.get(s, 4))).sort_values(["method", "protocol", "_o", "variant"])
    df = df[cols].reset_index(drop=True)
    strengths = (df[df.strength != "clean"]
                 .assign(_o=lambda d: d.strength.map(lambda s: order.get(s, 4)))
                 .groupby(["method", "protocol", "metric", "metric2", "_o", "strength"], as_index=False)
                 .agg(value=("value", "mean"), relative=("relative", "mean"), value2=("value2", "mean"),
                      relative2=("relative2", "mean"), corruptions=("variant", "count"))
                 .drop(columns="_o"))
    return PropagationTables(df, strengths, problems)


def _fmt(x: Any) -> str:
    return "—" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.1f}"


def propagation_markdown(tables: PropagationTables) -> str:
    """The Markdown section (values in percent; relative = percent of the same method's clean value)."""
    if not tables:
        return ""
    out = ["## Label propagation: JHMDB pose (PCK) and VIP parts (mIoU)", "",
           "Metrics exactly as CRW's eval_pck.py / eval_vip.py compute them (docs/datasets.md): PCK pools each joint's "
           "distances over the videos, then averages the joints; mIoU comes from one histogram over every frame of "
           "every video. Relative = percent of the method's clean value. Published: " + _SOURCE + ".", ""]
    head = "| method | dataset | variant | metric | ours | relative | published | settings |"
    out += [head, "|---|---|---|---|---|---|---|---|"]
    for r in tables.variants.itertuples():
        pub = PUBLISHED.get((r.method, r.protocol)) if not r.random_init and r.variant == "clean" else None
        settings = f"temperature {r.temperature_setting}" + (f", labels {r.label_mode}" if r.label_mode else "")
        flag = " (random init)" if r.random_init else ""
        for metric, value, relative in ((r.metric, r.value, r.relative), (r.metric2, r.value2, r.relative2)):
            p = pub.get(metric) if pub else None
            rel = _fmt(relative) if r.variant != "clean" else ""
            out.append(f"| {r.method}{flag} | {r.dataset} | {r.variant} | {metric} | {_fmt(value)} | {rel} | "
                       f"{_fmt(p) if p is not None else ''} | {settings} |")
    if len(tables.strengths):
        out += ["", "### Per strength (mean over corruptions; relative = percent of clean)", "",
                "| method | strength | metric | mean | relative | metric | mean | relative | corruptions |",
                "|---|---|---|---|---|---|---|---|---|"]
        out += [f"| {r.method} | {r.strength} | {r.metric} | {_fmt(r.value)} | {_fmt(r.relative)} | {r.metric2} | "
                f"{_fmt(r.value2)} | {_fmt(r.relative2)} | {r.corruptions} |" for r in tables.strengths.itertuples()]
    if tables.problems:
        out += ["", "Not scored: " + "; ".join(tables.problems)]
    return "\n".join(out) + "\n"
