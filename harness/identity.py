"""What a unit was computed on: the identity of the data of one (variant, video).

A unit record carries ``data`` (what the frames and the annotations were, by content) and ``data_id`` (a
SHA-256 of it).  Before a finished unit is reused, its ``data_id`` must equal that of the data of this
run; otherwise the run stops like a settings mismatch (:func:`check_done_units`), naming both.  So a
results folder never mixes numbers computed on two different builds or datasets with the same variant and
video names.

* DAVIS-C HDF5 store: the store's ``build_key`` (settings + source frame hashes), and the digests of the
  variant's per-frame SHA-256 list and of the annotations' SHA-256 (both recorded at build time; reads
  verify the bytes against them, so the identity is that of the bytes actually decoded);
* DAVIS root / DAVIS-C folder tree: digests of the frame files' and the annotation files' SHA-256s.

The digest of a list of files is the SHA-256 of their SHA-256s in frame order, so ``frames_sha256`` of
``clean`` is the same for a DAVIS root and for the store built from it.  The data's path is recorded too
(``data_path``) but is not part of the identity: a store may be moved.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from harness.results import RunMismatch, read_unit

__all__ = ["data_identity", "data_id", "check_done_units", "files_digest", "hashes_digest", "reuse_decision",
           "Reuse", "annotations_identity", "predictions_digest"]


def hashes_digest(hex_digests: Iterable[str]) -> str:
    """SHA-256 over a sequence of SHA-256 hex digests (in order)."""
    h = hashlib.sha256()
    for d in hex_digests:
        h.update(bytes.fromhex(d))
    return h.hexdigest()


def files_digest(paths: Sequence[Path]) -> str:
    """SHA-256 over the SHA-256 of each file's bytes (in order)."""
    return hashes_digest(hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths)


def _folder_frames(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def data_identity(source: Any, variant: str, video: str) -> dict:
    """The identity (a JSON-able dict) of the frames and annotations of ``(variant, video)`` in ``source``.

    A source may define ``identity(variant, video) -> dict`` itself; the three shipped kinds are handled
    here."""
    own = getattr(source, "identity", None)
    if callable(own):
        return dict(own(variant, video))
    store = getattr(source, "store", None)
    if store is not None and hasattr(store, "frame_hashes"):  # DAVIS-C HDF5 (davis_c.store.DavisCStore)
        return {"kind": "davis-c-h5", "build_key": store.attrs.get("build_key"), "variant": variant,
                "video": video, "frames_sha256": hashes_digest(store.frame_hashes(variant, video)),
                "masks_sha256": store.masks_hash(video)}
    davis = getattr(source, "davis", None)  # DAVIS-C folder tree: annotations from a DAVIS root
    dataset = getattr(davis if davis is not None else source, "dataset", None)
    if dataset is not None:
        jpgs, pngs = dataset.frame_paths(video)
        if variant == "clean":
            frames, kind = files_digest(jpgs), "davis"
        else:
            frames, kind = files_digest(_folder_frames(Path(source.path) / variant / video)), "davis-c-folders"
        return {"kind": kind, "variant": variant, "video": video, "frames_sha256": frames,
                "masks_sha256": files_digest(pngs)}
    # an unknown reader without an identity of its own: by path only (weak, but never silently equal)
    return {"kind": getattr(source, "kind", type(source).__name__), "path": str(getattr(source, "path", "")),
            "variant": variant, "video": video}


def data_id(identity: dict) -> str:
    """SHA-256 of an identity dict (the value compared before a unit is reused)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _describe(rec_data: dict | None, path: str | None) -> str:
    if not rec_data:
        return "no data identity (a unit written before identities were recorded)"
    bits = [f"{rec_data.get('kind')} {path or '?'}"]
    if rec_data.get("build_key"):
        bits.append(f"build_key {str(rec_data['build_key'])[:12]}")
    if rec_data.get("frames_sha256"):
        bits.append(f"frames {str(rec_data['frames_sha256'])[:12]}")
    if rec_data.get("masks_sha256"):
        bits.append(f"annotations {str(rec_data['masks_sha256'])[:12]}")
    return ", ".join(bits)


@dataclass(frozen=True)
class Reuse:
    """What to do with a unit's result file: ``compute`` (none, or failed), ``reuse`` (identical identity)
    or ``recompute`` (the predictions changed; ``reason`` names both sides)."""

    action: str
    reason: str = ""


def reuse_decision(rec: dict | None, path: Path | str, *, data: dict, data_path: str | None = None,
                   predictions_sha256: str | None = None, unidentified: str = "refuse") -> Reuse:
    """The one place that decides whether a finished unit is reused, from its identity.

    * no readable record, or a failed one: ``compute``;
    * other data (frames or annotations: ``data_id``): refused with :class:`RunMismatch` naming both sides
      (the results folder would otherwise mix two datasets under one name);
    * other predictions (imported masks edited or replaced since they were scored): ``recompute``;
    * otherwise ``reuse``.

    A record written before identities were recorded (no ``data_id``) is refused like other data, or with
    ``unidentified="recompute"`` (``harness.score``: rescoring is cheap) recomputed.
    """
    if rec is None or rec.get("status") != "ok":
        return Reuse("compute")
    if rec.get("data_id") is None and unidentified == "recompute":
        return Reuse("recompute", f"{path}: written before units recorded what they were computed on; rescored")
    if rec.get("data_id") != data_id(data):
        raise RunMismatch(
            f"{path} was computed on other data: recorded {_describe(rec.get('data'), rec.get('data_path'))}; "
            f"now {_describe(data, data_path)}. Use another --out or --name/--method for this data, or remove "
            f"{Path(path).parent} to score it afresh")
    if predictions_sha256 is not None and rec.get("predictions_sha256") != predictions_sha256:
        old = rec.get("predictions_sha256")
        return Reuse("recompute", f"{path}: the predictions changed since it was scored (recorded "
                                  f"{str(old)[:12] if old else 'no digest'}, now {predictions_sha256[:12]}); rescored")
    return Reuse("reuse")


def check_done_units(units: Iterable, out: str, source: Any, data_path: str) -> None:
    """Refuse (:class:`RunMismatch`) to reuse a finished unit computed on other data than ``source``'s
    (:func:`reuse_decision` for every finished unit of ``units``)."""
    cache: dict[tuple[str, str], dict] = {}
    for unit in units:
        path = unit.path(out)
        rec = read_unit(path)
        if rec is None or rec.get("status") != "ok":
            continue  # missing or failed units are (re)computed anyway
        key = (unit.variant, unit.video)
        if key not in cache:
            cache[key] = data_identity(source, *key)
        reuse_decision(rec, path, data=cache[key], data_path=data_path)


def annotations_identity(reader: Any, video: str) -> tuple[dict, str]:
    """(data identity, annotations digest) of one video's ground truth as ``harness.score`` reads it: the
    decoded annotation label maps (``davis_c.store.masks_digest``, the value a DAVIS-C store records for
    its clean video, so ``--data`` can be checked against ``--annotations``)."""
    import numpy as np

    from davis_c.masks import read_mask
    from davis_c.store import masks_digest

    if hasattr(reader, "annotation_paths"):  # DAVIS-2017 root: only Annotations/ is read
        pngs = reader.annotation_paths(video)
        masks = [read_mask(p) for p in pngs]
        shapes = {m.shape for m in masks}
        digest = masks_digest(np.stack(masks)) if len(shapes) == 1 else files_digest(pngs)
        dataset = "davis2017"
    else:
        vid = reader.load(video)
        digest = video_annotations_digest(vid)
        dataset = getattr(reader, "name", None)
    split = getattr(reader, "image_set", None) or getattr(reader, "split", None)
    return ({"kind": "annotations", "dataset": dataset, "split": split, "video": video,
             "masks_sha256": digest}, digest)


def video_annotations_digest(vid: Any) -> str:
    """SHA-256 of everything a loaded video is scored against: its label maps
    (``davis_c.store.masks_digest``), SA-V's per-object masks and JHMDB's joints, where it has them."""
    import numpy as np

    from davis_c.store import masks_digest

    digest = masks_digest(vid.masks)
    if getattr(vid, "object_masks", None):
        h = hashlib.sha256(digest.encode())
        for o in sorted(vid.object_masks):
            h.update(str(o).encode() + masks_digest(vid.object_masks[o].astype("uint8")).encode())
        digest = h.hexdigest()
    joints = getattr(vid, "joints", None)
    if joints is not None:
        joints = np.ascontiguousarray(joints, np.float64)
        h = hashlib.sha256(digest.encode() + json.dumps(list(joints.shape)).encode())
        h.update(memoryview(joints).cast("B"))
        digest = h.hexdigest()
    return digest


def predictions_digest(folder: Path | str) -> str | None:
    """Digest of the PNG files (names and bytes) of one unit's prediction folder; None if it has none."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    h = hashlib.sha256()
    for p in sorted(q for q in folder.iterdir() if q.suffix.lower() == ".png" and q.is_file()):
        h.update(p.name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()
