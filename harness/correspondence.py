"""Running CRW's label-propagation protocols in the harness: JHMDB pose (``jhmdb-pck``) and VIP parts
(``vip-miou``).

A unit of these protocols propagates frame 0's labels with a ``models.labelprop`` model (``--method crw`` or
``labelprop``) under the protocol's settings, and records what its metric pools over the set:

* ``jhmdb-pck``: per-joint normalised distances (``pck_dist``), this video's PCK curve, ``PCK@0.1`` /
  ``PCK@0.2`` (:mod:`harness.keypoints`);
* ``vip-miou``: the 20x20 confusion histogram (``hist``), this video's mIoU, pixel / mean accuracy and
  fwIoU (:mod:`harness.parts`).

Settings (``settings`` in every record): the protocol's own (JHMDB crop 320, context 7; VIP crop 560,
context 4; both k 10, radius 12), overridden by the method's ``propagation`` mapping (``--set
propagation.context=20``).  Two settings where the published recipes disagree are named, and each record
says which one made it:

``temperature``  ``paper`` (0.07, CRW paper; default) or ``readme`` (0.05, the reference README's DAVIS
                 command); a number is accepted and recorded as ``custom``;
``label_mode``   (VIP) ``released`` (bilinear label resize, what the released code does; default, but that it
                 produced the published 38.6 is not verified) or ``nearest`` (intended; UVC / VFS).
"""
from __future__ import annotations

import time
from typing import Any, Mapping

from common.vocabulary import JHMDB_JOINTS
from harness.keypoints import score_keypoints
from harness.parts import score_parts
from harness.pooled import ProtocolError, pooled_scores, summary_line  # noqa: F401 (the module's public face)

__all__ = ["PROTOCOLS", "TEMPERATURES", "ProtocolError", "resolve_settings", "run_video", "is_correspondence",
           "pooled_scores", "summary_line"]

#: named temperatures (the published recipes disagree)
TEMPERATURES = {"paper": 0.07, "readme": 0.05}

#: protocol -> its settings (spec jhmdb_vip.md §1.4, §2.4)
PROTOCOLS: dict[str, dict[str, Any]] = {
    "jhmdb-pck": {"crop": 320, "context": 7, "k": 10, "radius": 12.0, "temperature": "paper", "sigma": 0.5,
                  "decode_topk": 3},
    "vip-miou": {"crop": 560, "context": 4, "k": 10, "radius": 12.0, "temperature": "paper",
                 "label_mode": "released"},
}




def is_correspondence(protocol: str | None) -> bool:
    return protocol in PROTOCOLS


def resolve_settings(protocol: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The protocol's settings with ``overrides``; ``temperature`` resolved to a value plus its name."""
    if protocol not in PROTOCOLS:
        raise ProtocolError(f"unknown label-propagation protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    out = dict(PROTOCOLS[protocol])
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(out))
    if unknown:
        raise ProtocolError(f"propagation setting(s) {', '.join(unknown)} do not apply to {protocol}; known: "
                            f"{', '.join(out)}")
    out.update(overrides)
    temp = out["temperature"]
    if isinstance(temp, str):
        if temp not in TEMPERATURES:
            raise ProtocolError(f"temperature {temp!r}: name one of {', '.join(TEMPERATURES)} or give a number")
        out["temperature_setting"], out["temperature"] = temp, TEMPERATURES[temp]
    else:
        value = float(temp)
        named = [n for n, v in TEMPERATURES.items() if v == value]
        out["temperature_setting"], out["temperature"] = (named[0] if named else "custom"), value
    if protocol == "vip-miou":
        from models.labelprop.parts import LABEL_MODES

        if out["label_mode"] not in LABEL_MODES:
            raise ProtocolError(f"label_mode {out['label_mode']!r}: choose one of {', '.join(LABEL_MODES)}")
    for key in ("crop", "context", "k"):
        if isinstance(out[key], bool) or not isinstance(out[key], int) or out[key] < (1 if key != "context" else 0):
            raise ProtocolError(f"{key} must be a positive integer, got {out[key]!r}")
    return out


def run_video(vos, video, protocol: str, overrides: Mapping[str, Any] | None = None,
              progress: bool = False) -> tuple[dict[str, Any], float, Any]:
    """Propagate and score one video; returns (record fields, inference seconds, predictions).

    Predictions: JHMDB (T, J, 2) grid coordinates; VIP (T, crop, crop) uint8 labels."""
    settings = resolve_settings(protocol, overrides)
    if not hasattr(vos, "encoder") or not hasattr(vos, "encode"):
        raise ProtocolError(f"the {protocol} protocol propagates labels with a models.labelprop model (methods "
                            f"crw, labelprop); {type(vos).__name__} is not one")
    prop = {key: settings[key] for key in ("k", "radius", "context", "temperature")}
    t0 = time.perf_counter()
    if protocol == "jhmdb-pck":
        from models.labelprop.pose import propagate_keypoints

        joints = getattr(video, "joints", None)
        if joints is None:
            raise ProtocolError(f"video {video.name!r} has no joint annotations")
        out = propagate_keypoints(vos, video.frames, joints[0], crop=settings["crop"], sigma=settings["sigma"],
                                  decode_topk=settings["decode_topk"], progress=progress, **prop)
        seconds = time.perf_counter() - t0
        fields = score_keypoints(out["grid"], joints, video.frames.shape[1:3], out["grid_size"],
                                 joint_names=JHMDB_JOINTS)
        prediction = out["grid"]
    else:
        from models.labelprop.parts import propagate_parts

        out = propagate_parts(vos, video.frames, video.masks[0], crop=settings["crop"],
                              label_mode=settings["label_mode"], progress=progress, **prop)
        seconds = time.perf_counter() - t0
        fields = score_parts(out["labels"], video.masks)
        prediction = out["labels"]
    fields.update(protocol=protocol, settings=settings, scoring="local",
                  label_mode=settings.get("label_mode"), temperature_setting=settings["temperature_setting"])
    return fields, seconds, prediction
