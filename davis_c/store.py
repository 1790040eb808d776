"""The DAVIS-C HDF5 store: sharded, atomic, readable with plain h5py.

Layout (``format = "davis-c/1"``)::

    davis_c.h5                          index: attrs + h5py external links, nothing else
      /clean            -> davis_c_shards/clean.h5:/
      /<strength>/<corruption> -> davis_c_shards/<strength>__<corruption>.h5:/
    davis_c_shards/clean.h5             the source DAVIS frames and annotations
      /<video>/frames   vlen uint8 (T,): the original JPEG files' bytes, copied
      /<video>/masks    uint8 (T, H, W), gzip: the DAVIS annotations (label maps, 255 = void)
      /<video>.attrs    frame_names, object_ids, height, width, n_frames, frame_sha256 (JSON lists)
    davis_c_shards/<strength>__<corruption>.h5
      /<video>/frames   vlen uint8 (T,): one encoded image per frame (JPEG q95 like the official files,
                        or PNG with --codec png; crf_compression stores ffmpeg's own JPEG files)
      /<video>.attrs    seed (derived), frame_names, source_sha256

Every shard's root attributes say what it is (``kind``, ``strength``, ``severity``, ``corruption``,
``parameters``, ``codec``, ``seed``, ``toolkit_version``, ...; style shards and the index also the weights'
SHA-256, ``style_weights_random_init`` and the style images' md5s) and carry ``complete = True``; shards are
written to ``<name>.<pid>.partial`` and renamed into place only when complete.  No timestamps are stored,
so the same build gives byte-identical files.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import h5py
import numpy as np

from davis_c.codec import decode_image, encode_image
from davis_c.corruptions import STRENGTHS
from davis_c.davis import Video

__all__ = ["FORMAT", "DavisCStore", "StoreError", "ShardWriter", "open_store", "shard_dir", "shard_path",
           "read_shard_attrs", "encode_frame", "decode_frame", "derive_seed", "write_index"]

FORMAT = "davis-c/1"


class StoreError(ValueError):
    """A missing, incomplete or inconsistent DAVIS-C store; the message names the file."""


def derive_seed(base: int, corruption: str, strength: str, video: str) -> int:
    """Seed of one (corruption, strength, video): SHA-256 of the names, so it never depends on worker
    count, order, sharding or Python's hash randomisation."""
    digest = hashlib.sha256(f"davis-c/{int(base)}/{corruption}/{strength}/{video}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def encode_frame(frame: np.ndarray, codec: str) -> bytes:
    """RGB uint8 -> stored bytes (jpeg: byte-identical to the official ``cv2.imwrite``; png: lossless)."""
    return encode_image(frame, codec)


def decode_frame(data: np.ndarray | bytes, what: str) -> np.ndarray:
    """Stored bytes -> RGB uint8, decoded with OpenCV (as the official pipeline reads its files)."""
    try:
        return decode_image(data, what)
    except ValueError as exc:
        raise StoreError(str(exc)) from exc


def shard_dir(index: str | os.PathLike) -> Path:
    index = Path(index)
    return index.with_name(f"{index.stem}_shards")


def shard_path(index: str | os.PathLike, strength: str | None, corruption: str | None) -> Path:
    name = "clean.h5" if strength is None else f"{strength}__{corruption}.h5"
    return shard_dir(index) / name


def _attr(value: Any) -> Any:
    """Attribute value for h5py: JSON for containers/None, plain scalars and strings as they are."""
    if isinstance(value, (list, tuple, dict)) or value is None:
        return json.dumps(value, sort_keys=True)
    return value


def _unattr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{n":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_shard_attrs(path: str | os.PathLike) -> dict[str, Any] | None:
    """Root attributes of a complete shard, or None if the file is missing, unreadable or incomplete."""
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _unattr(v) for k, v in f.attrs.items()}
    except (OSError, KeyError):
        return None
    return attrs if attrs.get("complete") is True and attrs.get("format") == FORMAT else None


class ShardWriter:
    """Writes one shard to ``<final>.<pid>.partial``; ``commit()`` renames it into place, ``abort()`` removes
    it.  Use as a context manager: an exception aborts."""

    def __init__(self, final: str | os.PathLike, attrs: Mapping[str, Any]) -> None:
        self.final = Path(final)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.final.with_name(f"{self.final.name}.{os.getpid()}.partial")
        self._f = h5py.File(self.tmp, "w", libver="earliest", track_order=False)
        self._attrs = dict(attrs)

    def add_video(self, name: str, images: Sequence[bytes], attrs: Mapping[str, Any],
                  masks: np.ndarray | None = None) -> None:
        g = self._f.create_group(name, track_order=False)
        ds = g.create_dataset("frames", shape=(len(images),), dtype=h5py.vlen_dtype(np.uint8),
                              track_times=False)
        for i, data in enumerate(images):
            ds[i] = np.frombuffer(data, np.uint8)
        if masks is not None:
            g.create_dataset("masks", data=masks, dtype=np.uint8, chunks=(1,) + masks.shape[1:],
                             compression="gzip", compression_opts=4, shuffle=False, track_times=False)
        for k in sorted(attrs):
            g.attrs[k] = _attr(attrs[k])

    def commit(self) -> Path:
        for k in sorted(self._attrs):
            self._f.attrs[k] = _attr(self._attrs[k])
        self._f.attrs["complete"] = True
        self._f.close()
        os.replace(self.tmp, self.final)
        return self.final

    def abort(self) -> None:
        try:
            self._f.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def write_index(index: str | os.PathLike, attrs: Mapping[str, Any],
                shards: Iterable[tuple[str | None, str | None]]) -> Path:
    """Write the index file (atomically) with one external link per shard, in the given order."""
    index = Path(index)
    tmp = index.with_name(f"{index.name}.{os.getpid()}.partial")
    rel = shard_dir(index).name
    try:
        with h5py.File(tmp, "w", libver="earliest", track_order=False) as f:
            for strength, corruption in shards:
                target = f"{rel}/{shard_path(index, strength, corruption).name}"
                if strength is None:
                    f["clean"] = h5py.ExternalLink(target, "/")
                else:
                    grp = f.require_group(strength)
                    grp[corruption] = h5py.ExternalLink(target, "/")
            for k in sorted(attrs):
                f.attrs[k] = _attr(attrs[k])
        os.replace(tmp, index)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return index


class DavisCStore:
    """Read access to a DAVIS-C store.  ``store[strength, corruption, video]`` and ``store.clean(video)``
    return :class:`davis_c.davis.Video` (frames decoded on access, masks = the DAVIS annotations)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError(f"{self.path}: DAVIS-C store not found (build it with `python -m davis_c.build`)")
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as exc:
            raise StoreError(f"{self.path}: not a readable HDF5 file ({exc})") from exc
        self.attrs: dict[str, Any] = {k: _unattr(v) for k, v in self._f.attrs.items()}
        if self.attrs.get("format") != FORMAT:
            self._f.close()
            raise StoreError(f"{self.path}: not a DAVIS-C index file (format {self.attrs.get('format')!r})")
        self.videos: list[str] = list(self.attrs["videos"])
        self.strengths: list[str] = [s for s in STRENGTHS if s in self._f]
        found = {c for s in self.strengths for c in self._f[s].keys()}
        self.corruptions: list[str] = [c for c in self.attrs["corruptions"] if c in found]

    # -- variants -------------------------------------------------------------------------------
    @property
    def variants(self) -> list[str]:
        """``"clean"`` and every ``"<strength>/<corruption>"`` present, in benchmark order."""
        return ["clean"] + [f"{s}/{c}" for s in self.strengths for c in self.corruptions if c in self._f[s]]

    def _group(self, key: str, video: str) -> h5py.Group:
        try:
            shard = self._f[key]
        except KeyError:
            raise KeyError(f"{self.path}: no variant {key!r}; present: {', '.join(self.variants)}") from None
        except OSError as exc:  # dangling external link
            raise StoreError(f"{self.path}: shard of {key!r} is missing or unreadable ({exc})") from exc
        if video not in shard:
            raise KeyError(f"{self.path}: video {video!r} not in {key!r}; videos: {', '.join(self.videos)}")
        return shard[video]

    def shard_attrs(self, strength: str | None = None, corruption: str | None = None) -> dict[str, Any]:
        key = "clean" if strength is None else f"{strength}/{corruption}"
        return {k: _unattr(v) for k, v in self._f[key].attrs.items()}

    def images(self, strength: str | None, corruption: str | None, video: str) -> list[bytes]:
        """Stored image bytes per frame (JPEG or PNG), e.g. to export them without re-encoding."""
        g = self._group("clean" if strength is None else f"{strength}/{corruption}", video)
        return [bytes(x) for x in g["frames"][()]]

    def frames(self, strength: str | None, corruption: str | None, video: str) -> np.ndarray:
        key = "clean" if strength is None else f"{strength}/{corruption}"
        g = self._group(key, video)
        return np.stack([decode_frame(x, f"{self.path}:{key}/{video}/frame {i}")
                         for i, x in enumerate(g["frames"][()])])

    def _extras(self, g: h5py.Group, masks: np.ndarray) -> dict[str, Any]:
        """Given masks / annotated / required frames of a non-DAVIS-2017 build (davis_c.datasets.stored)."""
        from davis_c.datasets.stored import video_extras

        return video_extras({k: _unattr(v) for k, v in g.attrs.items()}, masks)

    def clean(self, video: str) -> Video:
        g = self._group("clean", video)
        masks = g["masks"][()]
        return Video(name=video, frames=self.frames(None, None, video), masks=masks,
                     object_ids=tuple(_unattr(g.attrs["object_ids"])),
                     frame_names=list(_unattr(g.attrs["frame_names"])), **self._extras(g, masks))

    def frame_names(self, video: str) -> list[str]:
        """Source frame file stems, e.g. ["00000", "00001", ...] (the official output names)."""
        return list(_unattr(self._group("clean", video).attrs["frame_names"]))

    def masks(self, video: str) -> np.ndarray:
        return self._group("clean", video)["masks"][()]

    def __getitem__(self, key) -> Video:
        if isinstance(key, tuple) and len(key) == 2:  # ("clean", video) or ("low/contrast", video)
            variant, video = key
            if variant == "clean":
                return self.clean(video)
            key = (*variant.split("/", 1), video)
        if not (isinstance(key, tuple) and len(key) == 3):
            raise KeyError("index the store as store[strength, corruption, video] or store[variant, video]")
        strength, corruption, video = key
        cg = self._group("clean", video)
        frames = self.frames(strength, corruption, video)
        masks = cg["masks"][()]
        return Video(name=video, frames=frames, masks=masks,
                     object_ids=tuple(_unattr(cg.attrs["object_ids"])),
                     frame_names=list(_unattr(cg.attrs["frame_names"])), **self._extras(cg, masks))

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        for s in self.strengths:
            for c in self.corruptions:
                if c in self._f[s]:
                    for v in self.videos:
                        yield s, c, v

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "DavisCStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"DavisCStore({str(self.path)!r}, strengths={self.strengths}, "
                f"corruptions={len(self.corruptions)}, videos={len(self.videos)})")


def open_store(path: str | os.PathLike) -> DavisCStore:
    """Open a DAVIS-C store (the index file written by ``python -m davis_c.build``)."""
    return DavisCStore(path)
