"""Recovery after a temporal corruption event: how many frames a method needs to get back to its own clean
per-frame J&F once a freeze or a burst ends (the temporal suite, :mod:`davis_c.corruptions.temporal_suite`).

A unit record of a temporal-suite variant lists its events (``events``: ``{"start", "end", "start_frame",
"end_frame"}``, ``end`` the first frame after the event, half-open as the store keeps them).  For one event
and the same (method, video, seed) run on ``clean``:

* ``jf(t)`` = the mean over the scored objects of ``(J + F) / 2`` at frame ``t`` (``per_frame``);
* recovery = the smallest ``r >= 0`` such that frame ``end + r`` is scored in both records and
  ``jf_corrupted(end + r) >= jf_clean(end + r) - TOLERANCE`` (5 J&F points, ``TOLERANCE = 0.05``);
* an event whose ``end`` is no scored frame (the stream ended, or it ended on the unscored last frame)
  gives no observation; an event that does not recover before the next event starts or the scored frames
  end is *not recovered* (``None``: censored, reported as a count, never averaged as a number).

Only frames scored by the protocol are looked at (DAVIS-2017: 1..T-2).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["TOLERANCE", "event_names", "frame_jf", "recovery_frames", "summarize"]

#: "within 5 points" of the clean per-frame J&F, on the [0, 1] scale the records use
TOLERANCE = 0.05


def event_names(events: Sequence[Sequence[int]], frame_names: Sequence[str]) -> list[dict[str, Any]]:
    """Events ``(start, end)`` (frame indices, half-open) as unit-record entries with their frame names
    (``end_frame`` None when the event lasts to the end of the video)."""
    out = []
    for s, e in events:
        s, e = int(s), int(e)
        out.append({"start": s, "end": e, "start_frame": frame_names[s],
                    "end_frame": frame_names[e] if e < len(frame_names) else None})
    return out


def frame_jf(per_frame: dict[str, Any]) -> dict[str, float]:
    """``{frame name: mean over objects of (J + F) / 2}`` from a record's ``per_frame`` (J, F: K x N)."""
    j = np.asarray(per_frame["J"], dtype=float)
    f = np.asarray(per_frame["F"], dtype=float)
    jf = ((j + f) / 2).mean(axis=0)
    return dict(zip(per_frame["frames"], jf.tolist()))


def recovery_frames(events: Sequence[dict[str, Any]], corrupted: dict[str, Any], clean: dict[str, Any],
                    tolerance: float = TOLERANCE) -> list[int | None]:
    """Per observable event (see the module doc): frames until recovery, or None when not recovered.
    ``corrupted`` / ``clean``: the two records' ``per_frame`` dicts (frame names must match: the temporal
    variants with events keep every frame)."""
    bad = frame_jf(corrupted)
    good = frame_jf(clean)
    order = list(corrupted["frames"])
    position = {name: i for i, name in enumerate(order)}
    starts = sorted(int(e["start"]) for e in events)
    out: list[int | None] = []
    for ev in sorted(events, key=lambda e: int(e["start"])):
        end_name = ev.get("end_frame")
        if end_name is None or end_name not in position or end_name not in good:
            continue  # no scored frame after the event: nothing to observe
        nxt = min((s for s in starts if s >= int(ev["end"])), default=None)
        found = None
        for i in range(position[end_name], len(order)):
            name = order[i]
            r = i - position[end_name]
            if nxt is not None and int(ev["end"]) + r >= nxt:
                break
            if name in good and bad[name] >= good[name] - tolerance:
                found = r
                break
        out.append(found)
    return out


def summarize(values: Sequence[int | None]) -> dict[str, Any]:
    """Mean, median and largest recovery over the recovered events, and the counts."""
    got = [v for v in values if v is not None]
    arr = np.asarray(got, dtype=float)
    return {"events": len(values), "recovered": len(got), "not_recovered": len(values) - len(got),
            "mean": float(arr.mean()) if got else float("nan"),
            "median": float(np.median(arr)) if got else float("nan"),
            "max": float(arr.max()) if got else float("nan")}
