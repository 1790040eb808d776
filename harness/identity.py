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
from pathlib import Path
from typing import Any, Iterable, Sequence

from harness.results import RunMismatch, read_unit

__all__ = ["data_identity", "data_id", "check_done_units", "files_digest", "hashes_digest"]


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


def check_done_units(units: Iterable, out: str, source: Any, data_path: str) -> None:
    """Refuse (:class:`RunMismatch`) to reuse a finished unit computed on other data than ``source``'s."""
    cache: dict[tuple[str, str], dict] = {}
    for unit in units:
        path = unit.path(out)
        rec = read_unit(path)
        if rec is None or rec.get("status") != "ok":
            continue  # missing or failed units are (re)computed anyway
        key = (unit.variant, unit.video)
        if key not in cache:
            cache[key] = data_identity(source, *key)
        now = cache[key]
        if rec.get("data_id") != data_id(now):
            raise RunMismatch(
                f"{path} was computed on other data: recorded {_describe(rec.get('data'), rec.get('data_path'))}; "
                f"now {_describe(now, data_path)}. Use another --out or --name for this data, or remove "
                f"{Path(out) / unit.method} to start afresh")
