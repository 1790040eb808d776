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
      /<video>.attrs    seed (derived), frame_names, source_sha256, frame_sha256

Integrity: every shard records the SHA-256 of every stored frame (``frame_sha256``, one per frame, written
at build time) and the clean shard that of each video's annotations (``masks_sha256``); every read checks
them and raises :class:`StoreError` naming the shard file, the variant, the video and the frame, so damaged
bytes are never decoded and scored.  :meth:`DavisCStore.check` (run when a store is opened, unless
``check=False``) makes sure every linked shard exists, opens, is complete and belongs to the index's build;
``python -m davis_c.verify`` checks a whole store, bytes included.

Every shard's root attributes say what it is (``kind``, ``strength``, ``severity``, ``corruption``,
``parameters``, ``codec``, ``seed``, ``toolkit_version``, ...; style shards and the index also the weights'
SHA-256, ``style_weights_random_init`` and the style images' md5s) and carry ``complete = True``; shards are
written to ``<name>.<pid>.partial`` and renamed into place only when complete.  No timestamps are stored,
so the same build gives byte-identical files.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import h5py
import numpy as np

from common.atomic import publish
from common.vocabulary import STRENGTHS
from davis_c.codec import decode_image, encode_image
from davis_c.davis import Video

__all__ = ["FORMAT", "INTEGRITY", "DavisCStore", "StoreError", "ShardWriter", "open_store", "shard_dir",
           "shard_path", "read_shard_attrs", "encode_frame", "decode_frame", "derive_seed", "write_index",
           "sha256_hex", "masks_digest"]

FORMAT = "davis-c/1"
#: what the build records for verification (part of the build key: stores without it are rebuilt)
INTEGRITY = "sha256-per-frame/1"


def sha256_hex(data: bytes | np.ndarray) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(data)) if isinstance(data, np.ndarray) else data).hexdigest()


def masks_digest(masks: np.ndarray) -> str:
    """SHA-256 of a video's (T, H, W) uint8 label maps, shape included."""
    masks = np.ascontiguousarray(masks, dtype=np.uint8)
    h = hashlib.sha256(json.dumps(list(masks.shape)).encode())
    h.update(memoryview(masks).cast("B"))
    return h.hexdigest()


def _named(exc: OSError, path: Path) -> OSError:
    """The same I/O error with the file named (h5py's errors name none), for one-line messages."""
    from common.cli import with_path

    return with_path(exc, path)


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
        self._f = None
        try:
            self._f = h5py.File(self.tmp, "w", libver="earliest", track_order=False)
        except OSError as exc:
            self.tmp.unlink(missing_ok=True)
            raise _named(exc, self.final) from exc
        self._attrs = dict(attrs)

    def add_video(self, name: str, images: Sequence[bytes], attrs: Mapping[str, Any],
                  masks: np.ndarray | None = None) -> None:
        """Store one video's encoded frames (and annotations); the SHA-256 of every frame (and of the
        annotations) is recorded next to them for verification on read."""
        attrs = dict(attrs)
        attrs["frame_sha256"] = [sha256_hex(bytes(b)) for b in images]
        if masks is not None:
            attrs["masks_sha256"] = masks_digest(masks)
        try:
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
        except OSError as exc:
            raise _named(exc, self.final) from exc

    def commit(self) -> Path:
        try:
            for k in sorted(self._attrs):
                self._f.attrs[k] = _attr(self._attrs[k])
            self._f.attrs["complete"] = True
            self._f.close()
            publish(self.tmp, self.final)
        except BaseException as exc:  # the caller may no longer hold this writer: remove the partial here
            self.abort()
            if isinstance(exc, OSError):
                raise _named(exc, self.final) from exc
            raise
        return self.final

    def abort(self) -> None:
        """Close and remove the partial file; never raises (a full disk may fail the close), so a loop
        aborting several writers removes every one of them."""
        with contextlib.suppress(Exception):
            if self._f is not None:
                self._f.close()
        with contextlib.suppress(OSError):
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
        publish(tmp, index)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _named(exc, index) from exc
        raise
    return index


class DavisCStore:
    """Read access to a DAVIS-C store.  ``store[strength, corruption, video]`` and ``store.clean(video)``
    return :class:`davis_c.davis.Video` (frames decoded on access, masks = the DAVIS annotations).

    Every frame read is checked against its SHA-256 recorded at build time, and the annotations against
    theirs; with ``check=True`` (the default) every linked shard is checked when the store is opened
    (:meth:`check`).  Problems raise :class:`StoreError` naming the shard file."""

    def __init__(self, path: str | os.PathLike, check: bool = True) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError(f"{self.path}: DAVIS-C store not found (build it with `python -m davis_c.build`)")
        try:
            self._f = h5py.File(self.path, "r")
            self.attrs: dict[str, Any] = {k: _unattr(v) for k, v in self._f.attrs.items()}
        except OSError as exc:
            raise StoreError(f"{self.path}: not a readable HDF5 file ({exc})") from exc
        if self.attrs.get("format") != FORMAT:
            self._f.close()
            raise StoreError(f"{self.path}: not a DAVIS-C index file (format {self.attrs.get('format')!r})")
        self.videos: list[str] = list(self.attrs["videos"])
        #: variant -> shard file, from the index's links (whether or not the file is there)
        self.links: dict[str, Path] = {}
        self._link("clean", self._f)
        self.strengths: list[str] = [s for s in STRENGTHS if s in self._f]
        found: set[str] = set()
        for s in self.strengths:
            for c in self._f[s].keys():
                if self._link(f"{s}/{c}", self._f[s], c):
                    found.add(c)
        self.corruptions: list[str] = [c for c in self.attrs["corruptions"] if c in found]
        self._names: dict[str, list[str]] = {}
        if check:
            try:
                self.check()
            except BaseException:
                self._f.close()
                raise

    def _link(self, variant: str, group: h5py.Group, name: str | None = None) -> bool:
        link = group.get(name or variant, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            self.links[variant] = self.path.parent / link.filename
            return True
        return False

    # -- variants -------------------------------------------------------------------------------
    @property
    def variants(self) -> list[str]:
        """``"clean"`` and every ``"<strength>/<corruption>"`` linked in the index, in benchmark order."""
        return ["clean"] + [f"{s}/{c}" for s in self.strengths for c in self.corruptions
                            if f"{s}/{c}" in self.links]

    def shard_file(self, variant: str) -> Path:
        """The shard file of a variant (``"clean"`` or ``"<strength>/<corruption>"``)."""
        try:
            return self.links[variant]
        except KeyError:
            raise KeyError(f"{self.path}: no variant {variant!r}; present: {', '.join(self.variants)}") from None

    def problems(self, variants: Iterable[str] | None = None) -> list[str]:
        """What is wrong with the linked shards (cheap: no frame is read): a missing, unreadable or
        incomplete file, one of another build, or a video of the index that a shard lacks."""
        out = []
        key = self.attrs.get("build_key")
        for variant in (self.variants if variants is None else variants):
            path = self.shard_file(variant)
            if not path.is_file():
                out.append(f"{path}: shard of {variant!r} is missing (rebuild: rerun `python -m davis_c.build` "
                           "with the same settings)")
                continue
            try:
                with h5py.File(path, "r") as f:
                    attrs = {k: _unattr(v) for k, v in f.attrs.items()}
                    lacking = [v for v in self.videos if v not in f or "frames" not in f[v]
                               or "frame_sha256" not in f[v].attrs]
                    bad_len = [v for v in self.videos if v not in lacking
                               and len(_unattr(f[v].attrs["frame_sha256"])) != f[v]["frames"].shape[0]]
            except (OSError, KeyError, ValueError, TypeError) as exc:
                out.append(f"{path}: shard of {variant!r} cannot be read ({' '.join(str(exc).split())}); "
                           "delete it and rerun the build")
                continue
            if attrs.get("complete") is not True or attrs.get("format") != FORMAT:
                out.append(f"{path}: shard of {variant!r} is incomplete (no complete = True)")
            elif key is not None and attrs.get("build_key") != key:
                out.append(f"{path}: shard of {variant!r} belongs to another build than the index {self.path}")
            elif lacking:
                out.append(f"{path}: shard of {variant!r} lacks video(s) or frame hashes: {', '.join(lacking)} "
                           "(built before verification existed? rebuild with --force)")
            elif bad_len:
                out.append(f"{path}: shard of {variant!r} has a frame hash list of the wrong length for "
                           f"{', '.join(bad_len)}")
        return out

    def check(self, variants: Iterable[str] | None = None) -> None:
        """Raise :class:`StoreError` naming every damaged shard file (see :meth:`problems`)."""
        found = self.problems(variants)
        if found:
            more = f" (and {len(found) - 1} more problem(s); `python -m davis_c.verify --h5 {self.path}` " \
                   "lists them)" if len(found) > 1 else ""
            raise StoreError(found[0] + more)

    def _group(self, key: str, video: str) -> h5py.Group:
        path = self.shard_file(key)
        try:
            shard = self._f[key]
        except (KeyError, OSError) as exc:  # dangling or unreadable external link
            raise StoreError(f"{path}: shard of {key!r} is missing or unreadable ({exc})") from exc
        try:
            if video not in shard:
                raise KeyError(f"{path}: video {video!r} not in {key!r}; videos: {', '.join(self.videos)}")
            return shard[video]
        except OSError as exc:
            raise StoreError(f"{path}: shard of {key!r} is damaged ({' '.join(str(exc).split())})") from exc

    def shard_attrs(self, strength: str | None = None, corruption: str | None = None) -> dict[str, Any]:
        key = "clean" if strength is None else f"{strength}/{corruption}"
        try:
            return {k: _unattr(v) for k, v in self._f[key].attrs.items()}
        except (KeyError, OSError) as exc:
            raise StoreError(f"{self.shard_file(key)}: shard of {key!r} is missing or unreadable ({exc})") from exc

    def images(self, strength: str | None, corruption: str | None, video: str) -> list[bytes]:
        """Stored image bytes per frame (JPEG or PNG), each checked against its SHA-256 recorded at build
        time; raises :class:`StoreError` naming the shard file, variant, video and frame when damaged."""
        key = "clean" if strength is None else f"{strength}/{corruption}"
        g = self._group(key, video)
        path = self.shard_file(key)
        try:
            raw = g["frames"][()]
            hashes = _unattr(g.attrs.get("frame_sha256"))
        except (OSError, KeyError) as exc:
            raise StoreError(f"{path}: variant {key!r}, video {video!r}: frames cannot be read "
                             f"({' '.join(str(exc).split())})") from exc
        if not isinstance(hashes, list) or len(hashes) != len(raw):
            raise StoreError(f"{path}: variant {key!r}, video {video!r}: no frame hashes to verify the "
                             "frames against (built before verification existed? rebuild with --force)")
        out = []
        for i, (x, want) in enumerate(zip(raw, hashes)):
            data = x.tobytes()
            if hashlib.sha256(data).hexdigest() != want:
                try:
                    name = self.frame_names(video)[i]
                except (StoreError, IndexError):
                    name = f"#{i}"
                raise StoreError(f"{path}: variant {key!r}, video {video!r}, frame {name}: the stored bytes do "
                                 "not match their SHA-256 recorded at build time (damaged file; "
                                 f"`python -m davis_c.verify --h5 {self.path}` lists all damage)")
            out.append(data)
        return out

    def frame_hashes(self, variant: str, video: str) -> list[str]:
        """The SHA-256 of every stored frame of ``(variant, video)``, as recorded at build time."""
        g = self._group(variant, video)
        try:
            hashes = _unattr(g.attrs.get("frame_sha256"))
        except OSError as exc:
            raise StoreError(f"{self.shard_file(variant)}: {variant}/{video}: unreadable frame hashes") from exc
        if not isinstance(hashes, list):
            raise StoreError(f"{self.shard_file(variant)}: {variant}/{video} has no frame hashes (built before "
                             "verification existed? rebuild with --force)")
        return list(hashes)

    def masks_hash(self, video: str) -> str | None:
        """The SHA-256 of a video's annotations recorded at build time (:func:`masks_digest`)."""
        return self._clean_attr(video, "masks_sha256")

    def damage(self, variant: str, video: str) -> list[str]:
        """Every problem of one (variant, video), frame by frame (not only the first, as a read reports):
        unreadable frames, frames whose bytes do not match their SHA-256, and for ``clean`` the annotations."""
        path = self.shard_file(variant)
        where = f"{path}: variant {variant!r}, video {video!r}"
        try:
            g = self._group(variant, video)
            raw = g["frames"][()]
            hashes = _unattr(g.attrs.get("frame_sha256"))
        except (StoreError, KeyError, OSError) as exc:
            return [f"{where}: cannot be read ({' '.join(str(exc).split())})"]
        if not isinstance(hashes, list) or len(hashes) != len(raw):
            return [f"{where}: no frame hashes of the right length to verify against"]
        try:
            names = self.frame_names(video)
        except StoreError:
            names = []
        out = [f"{where}, frame {names[i] if i < len(names) else f'#{i}'}: stored bytes do not match their SHA-256"
               for i, (x, want) in enumerate(zip(raw, hashes)) if hashlib.sha256(x.tobytes()).hexdigest() != want]
        if variant == "clean":
            try:
                self.masks(video)
            except StoreError as exc:
                out.append(str(exc))
        return out

    def frames(self, strength: str | None, corruption: str | None, video: str) -> np.ndarray:
        key = "clean" if strength is None else f"{strength}/{corruption}"
        return np.stack([decode_frame(x, f"{self.shard_file(key)}:{key}/{video}/frame {i}")
                         for i, x in enumerate(self.images(strength, corruption, video))])

    def _clean_attr(self, video: str, name: str) -> Any:
        g = self._group("clean", video)
        try:
            return _unattr(g.attrs[name])
        except (KeyError, OSError) as exc:
            raise StoreError(f"{self.shard_file('clean')}: video {video!r} has no readable {name!r}") from exc

    def _extras(self, g: h5py.Group, masks: np.ndarray) -> dict[str, Any]:
        """Given masks / annotated / required frames of a non-DAVIS-2017 build (davis_c.datasets.stored)."""
        from davis_c.datasets.stored import video_extras

        return video_extras({k: _unattr(v) for k, v in g.attrs.items()}, masks)

    def clean(self, video: str) -> Video:
        g = self._group("clean", video)
        masks = self.masks(video)
        return Video(name=video, frames=self.frames(None, None, video), masks=masks,
                     object_ids=tuple(self._clean_attr(video, "object_ids")),
                     frame_names=self.frame_names(video), **self._extras(g, masks))

    def frame_names(self, video: str) -> list[str]:
        """Source frame file stems, e.g. ["00000", "00001", ...] (the official output names)."""
        if video not in self._names:
            self._names[video] = list(self._clean_attr(video, "frame_names"))
        return list(self._names[video])

    def masks(self, video: str) -> np.ndarray:
        """The annotations of a video, checked against their SHA-256 recorded at build time."""
        g = self._group("clean", video)
        path = self.shard_file("clean")
        try:
            masks = g["masks"][()]
            want = _unattr(g.attrs.get("masks_sha256"))
        except (OSError, KeyError) as exc:
            raise StoreError(f"{path}: video {video!r}: annotations cannot be read "
                             f"({' '.join(str(exc).split())})") from exc
        if want is None:
            raise StoreError(f"{path}: video {video!r}: no annotation hash to verify against (built before "
                             "verification existed? rebuild with --force)")
        if masks_digest(masks) != want:
            raise StoreError(f"{path}: variant 'clean', video {video!r}: the stored annotations do not match "
                             "their SHA-256 recorded at build time (damaged file)")
        return masks

    def __getitem__(self, key) -> Video:
        if isinstance(key, tuple) and len(key) == 2:  # ("clean", video) or ("low/contrast", video)
            variant, video = key
            if variant == "clean":
                return self.clean(video)
            key = (*variant.split("/", 1), video)
        if not (isinstance(key, tuple) and len(key) == 3):
            raise KeyError("index the store as store[strength, corruption, video] or store[variant, video]")
        strength, corruption, video = key
        frames = self.frames(strength, corruption, video)
        cg = self._group("clean", video)
        masks = self.masks(video)
        return Video(name=video, frames=frames, masks=masks,
                     object_ids=tuple(self._clean_attr(video, "object_ids")),
                     frame_names=self.frame_names(video), **self._extras(cg, masks))

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        for s in self.strengths:
            for c in self.corruptions:
                if f"{s}/{c}" in self.links:
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


def open_store(path: str | os.PathLike, check: bool = True) -> DavisCStore:
    """Open a DAVIS-C store (the index file written by ``python -m davis_c.build``); ``check`` checks every
    linked shard first (:meth:`DavisCStore.check`)."""
    return DavisCStore(path, check=check)
