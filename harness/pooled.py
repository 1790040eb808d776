"""The set-level metrics of the label-propagation protocols (``harness.correspondence``), pooled from unit
records: JHMDB's per-joint distances into PCK, VIP's confusion histograms into mIoU.  Files in, numbers out:
no model and no dataset reader, so the leaderboard reads these numbers exactly as ``harness.run`` prints them."""
from __future__ import annotations

from typing import Any

import numpy as np

from common.vocabulary import JHMDB_JOINTS

__all__ = ["ProtocolError", "pooled_scores", "summary_line"]


class ProtocolError(ValueError):
    """A setting or model these protocols cannot run with."""


def pooled_scores(records) -> dict[str, Any]:
    """The set-level metric of unit records of one (method, variant): pooled per seed, mean over seeds.

    JHMDB: per-joint distances pooled over the videos -> ``PCK@0.1``, ``PCK@0.2`` and ``pck`` (curve);
    VIP: the summed histogram -> ``mIoU``, ``pixel_acc``, ``mean_acc``, ``fwIoU``.  Values in percent.
    Records made with different settings (e.g. label modes) are refused: their numbers do not pool.
    Raises ``harness.keypoints.PCKError`` where a joint has no entry in the whole set."""
    from harness.keypoints import ALPHAS, pck_curve, pool
    from harness.parts import part_metrics, pool_hist

    records = [r for r in records if r.get("status", "ok") == "ok"]
    if not records:
        return {}
    protocols = {r.get("protocol") for r in records}
    settings = {repr(sorted((r.get("settings") or {}).items())) for r in records}
    if len(protocols) != 1 or len(settings) != 1:
        raise ProtocolError("unit records of one variant were made with different protocols or settings; "
                            "score them separately (see each record's 'settings')")
    protocol = protocols.pop()
    by_seed: dict[int, list] = {}
    for r in records:
        by_seed.setdefault(int(r.get("seed", 0)), []).append(r)
    out: dict[str, Any] = {"protocol": protocol, "settings": records[0].get("settings"),
                           "videos": len({r.get("video") for r in records}), "seeds": len(by_seed)}
    if protocol == "jhmdb-pck":
        curves = [pck_curve(pool(rs), ALPHAS, JHMDB_JOINTS) for rs in by_seed.values()]
        curve = {a: float(np.mean([c[a] for c in curves])) for a in curves[0]}
        out.update({"pck": curve, "PCK@0.1": curve["0.1"], "PCK@0.2": curve["0.2"]})
    else:
        metrics = [part_metrics(pool_hist(rs)) for rs in by_seed.values()]
        for key in ("mIoU", "pixel_acc", "mean_acc", "fwIoU"):
            vals = [m[key] for m in metrics if m[key] is not None]
            out[key] = 100 * float(np.mean(vals)) if vals else None
        out["label_mode"] = records[0].get("label_mode")
    out["temperature_setting"] = records[0].get("temperature_setting")
    return out


def summary_line(variant: str, records) -> str:
    """One line of ``harness.run``'s summary for a variant of these protocols."""
    from harness.keypoints import PCKError

    try:
        s = pooled_scores(records)
    except (PCKError, ProtocolError) as exc:
        return f"{variant}: {exc}"
    if not s:
        return f"{variant}: no unit ok"
    if s["protocol"] == "jhmdb-pck":
        return (f"{variant}: PCK@0.1 {s['PCK@0.1']:.1f}  PCK@0.2 {s['PCK@0.2']:.1f}  ({s['videos']} videos pooled, "
                f"temperature {s['temperature_setting']})")
    return (f"{variant}: mIoU {s['mIoU']:.1f}  pixel acc {s['pixel_acc']:.1f}  ({s['videos']} videos, one histogram; "
            f"labels {s['label_mode']}, temperature {s['temperature_setting']})")
