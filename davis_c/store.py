"""The DAVIS-C HDF5 store: sharded, atomic, readable with plain h5py.

Layout (``format = "davis-c/2"``)::

    davis_c.h5                          index: attrs (incl. each link's shard_sha256) + h5py external links
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
    temporal suite shards (``davis_c.build --suite temporal``): the same, plus per video ``events``,
    ``schedule``, ``kept_frames`` (stride: only those frames are stored) and shake's ``masks`` (+ masks_sha256)

Meaning (format ``davis-c/2``): every video group carries ``video_sha256``, the SHA-256 of all its
attributes as stored (seed, frame names and order, frame hashes, annotations' hash, object ids ...) together
with the shard's ``variant`` and ``build_key`` and the video's name; every shard carries ``shard_sha256``,
the SHA-256 of its root attributes (variant, strength, corruption, severity, parameters, seed, codec, video
list, build key, library versions ...) and of every ``video_sha256``; the index records the
``shard_sha256`` of every shard it links (``shard_sha256`` attribute: variant -> digest).  Opening,
verifying and a rebuild's reuse recompute these from the stored attributes (:func:`shard_problems`), so a
shard swapped for another, renamed, or with an edited attribute is refused naming the file.  Stores of
format ``davis-c/1`` (no such digests) are refused with a message saying to rerun the build.

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
           "sha256_hex", "masks_digest", "shard_problems", "attrs_digest", "OLD_FORMATS", "old_format_message",
           "partial_path"]

FORMAT = "davis-c/2"
#: older formats: recognised only to say what to do with them
OLD_FORMATS = ("davis-c/1",)
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


def _canon(value: Any) -> Any:
    """An HDF5 attribute value as stored, in a JSON form that keeps its type (a string ``"1"`` and the
    integer 1 differ; floats by their exact repr)."""
    if isinstance(value, bytes):
        return ["s", value.decode("utf-8", "surrogateescape")]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, (bool, np.bool_)):
        return ["b", bool(value)]
    if isinstance(value, (int, np.integer)):
        return ["i", int(value)]
    if isinstance(value, (float, np.floating)):
        return ["f", repr(float(value))]
    if isinstance(value, np.ndarray):
        return ["a", str(value.dtype), list(value.shape), [_canon(x) for x in value.ravel().tolist()]]
    return ["r", repr(value)]


def attrs_digest(attrs: Mapping[str, Any], **context: Any) -> str:
    """SHA-256 of a set of HDF5 attributes *as stored* (every key and value, types included) plus
    ``context`` (plain JSON values: the variant, the video name, the build key ...)."""
    body = {"attrs": {str(k): _canon(v) for k, v in attrs.items()}, "context": context}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


#: attributes that are not covered by the shard digest (the digest itself, and the completion flag)
_NOT_DIGESTED = ("shard_sha256", "video_sha256", "complete")


def _video_digest(group_attrs: Mapping[str, Any], variant: Any, build_key: Any, video: str) -> str:
    return attrs_digest({k: v for k, v in group_attrs.items() if k not in _NOT_DIGESTED},
                        variant=_canon(variant), build_key=_canon(build_key), video=video)


def _shard_digest(root_attrs: Mapping[str, Any], video_digests: Mapping[str, Any]) -> str:
    return attrs_digest({k: v for k, v in root_attrs.items() if k not in _NOT_DIGESTED},
                        videos={k: _canon(v) for k, v in sorted(video_digests.items())})


def old_format_message(path: str | os.PathLike, found: Any) -> str:
    return (f"{path}: DAVIS-C store of format {found!r}, written by an older toolkit whose digests do not "
            f"cover the attributes that give the frames their meaning (this toolkit reads {FORMAT!r}); rerun "
            "the same `python -m davis_c.build` command: it rebuilds the shards (the frames come out "
            "byte-identical)")


def shard_problems(path: str | os.PathLike, variant: str, *, build_key: str | None = None,
                   videos: Sequence[str] | None = None, expected_sha256: str | None = None) -> list[str]:
    """What makes the shard file ``path`` not the ``variant`` shard it is linked (or reused) as, from its
    attributes only (no frame is read): a missing, unreadable or incomplete file, another format, another
    variant (a swapped or renamed file), another build, a video of ``videos`` it lacks, a frame hash list of
    the wrong length, an attribute edited after the build (``video_sha256`` / ``shard_sha256`` no longer
    match the stored attributes), or a shard other than the one the index linked (``expected_sha256``)."""
    path = Path(path)
    if not path.is_file():
        return [f"{path}: shard of {variant!r} is missing (rebuild: rerun `python -m davis_c.build` with the "
                "same settings)"]
    try:
        with h5py.File(path, "r") as f:
            raw = dict(f.attrs.items())
            attrs = {k: _unattr(v) for k, v in raw.items()}
            groups = {k: dict(g.attrs.items()) for k, g in f.items() if isinstance(g, h5py.Group)}
            n_frames = {k: g["frames"].shape[0] for k, g in f.items()
                        if isinstance(g, h5py.Group) and "frames" in g}
    except (OSError, KeyError, ValueError, TypeError) as exc:
        return [f"{path}: shard of {variant!r} cannot be read ({' '.join(str(exc).split())}); delete it and "
                "rerun the build"]
    if attrs.get("format") in OLD_FORMATS:
        return [old_format_message(path, attrs.get("format"))]
    if attrs.get("complete") is not True or attrs.get("format") != FORMAT:
        return [f"{path}: shard of {variant!r} is incomplete (no complete = True)"]
    if attrs.get("variant") != variant:
        return [f"{path}: linked as {variant!r} but holds {attrs.get('variant')!r} (a swapped, renamed or "
                "copied shard file); put the right file back or delete it and rerun the build"]
    if variant != "clean":
        strength, _, corruption = variant.partition("/")
        if (attrs.get("strength"), attrs.get("corruption")) != (strength, corruption) or \
                attrs.get("severity") != STRENGTHS.get(strength):
            return [f"{path}: shard of {variant!r} says strength {attrs.get('strength')!r}, corruption "
                    f"{attrs.get('corruption')!r}, severity {attrs.get('severity')!r} (edited attributes); delete "
                    "it and rerun the build"]
    if build_key is not None and attrs.get("build_key") != build_key:
        return [f"{path}: shard of {variant!r} belongs to another build than the index"]
    out = []
    lacking = [v for v in (videos or []) if v not in groups or v not in n_frames or "frame_sha256" not in groups[v]]
    if lacking:
        out.append(f"{path}: shard of {variant!r} lacks video(s) or frame hashes: {', '.join(lacking)} "
                   "(rebuild with --force)")
    if videos is not None and attrs.get("videos") is not None and list(attrs.get("videos")) != list(videos):
        out.append(f"{path}: shard of {variant!r} lists videos {attrs.get('videos')} but the index "
                   f"{list(videos)}")
    edited = []
    for v, ga in groups.items():
        hashes = _unattr(ga.get("frame_sha256"))
        if v in n_frames and isinstance(hashes, list) and len(hashes) != n_frames[v]:
            out.append(f"{path}: shard of {variant!r} has a frame hash list of the wrong length for {v}")
        if _unattr(ga.get("video_sha256")) != _video_digest(ga, raw.get("variant"), raw.get("build_key"), v):
            edited.append(v)
    if edited:
        out.append(f"{path}: shard of {variant!r}, video(s) {', '.join(sorted(edited))}: the attributes (seed, "
                   "frame names, frame hashes ...) do not match their digest recorded at build time (edited "
                   "after the build); delete the shard and rerun the build")
    want = _shard_digest(raw, {v: ga.get("video_sha256") for v, ga in groups.items()})
    if not edited and _unattr(raw.get("shard_sha256")) != want:
        out.append(f"{path}: shard of {variant!r}: its attributes or video list do not match the shard digest "
                   "recorded at build time (edited after the build); delete it and rerun the build")
    elif expected_sha256 is not None and _unattr(raw.get("shard_sha256")) != expected_sha256:
        out.append(f"{path}: shard of {variant!r} is not the shard the index linked (its digest differs from "
                   "the index's record: replaced by a file of another build or run); put the right file back "
                   "or rerun the build")
    return out


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
    """The shard folder of an index file, derived from its full name (like its lock, ``<name>.lock``):
    ``X.h5`` -> ``X_shards/``; any other name -> ``<name>.shards/`` (``X.hdf5`` -> ``X.hdf5.shards/``,
    ``X`` -> ``X.shards/``), so two index files never share a shard folder."""
    index = Path(index)
    if index.suffix == ".h5" and index.stem:
        return index.with_name(f"{index.stem}_shards")
    return index.with_name(f"{index.name}.shards")


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


def partial_path(final: str | os.PathLike, pid: int | None = None) -> Path:
    """Where process ``pid`` (default: this one) writes ``final`` (a shard or the index) until it is complete."""
    final = Path(final)
    return final.with_name(f"{final.name}.{os.getpid() if pid is None else pid}.partial")


class ShardWriter:
    """Writes one shard to ``<final>.<pid>.partial``; ``commit()`` renames it into place, ``abort()`` removes
    it.  Use as a context manager: an exception aborts."""

    def __init__(self, final: str | os.PathLike, attrs: Mapping[str, Any]) -> None:
        self.final = Path(final)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = partial_path(self.final)
        self._f = None
        try:
            self._f = h5py.File(self.tmp, "w", libver="earliest", track_order=False)
        except BaseException as exc:  # also a SIGTERM/Ctrl-C inside the open: no caller holds this writer yet
            self.abort()
            if isinstance(exc, OSError):
                raise _named(exc, self.final) from exc
            raise
        self._attrs = dict(attrs)
        self._attrs.pop("complete", None)
        self._video_digests: dict[str, Any] = {}

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
            stored = dict(g.attrs.items())
            ctx = [_attr(self._attrs[k]) if k in self._attrs else None for k in ("variant", "build_key")]
            g.attrs["video_sha256"] = _video_digest(stored, *ctx, name)
            self._video_digests[name] = g.attrs["video_sha256"]
        except OSError as exc:
            raise _named(exc, self.final) from exc

    def commit(self) -> Path:
        try:
            for k in sorted(self._attrs):
                self._f.attrs[k] = _attr(self._attrs[k])
            self._f.attrs["shard_sha256"] = _shard_digest(dict(self._f.attrs.items()), self._video_digests)
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
    """Write the index file (atomically) with one external link per shard, in the given order, and the
    ``shard_sha256`` of every linked shard (attribute ``shard_sha256``: variant -> digest), so that opening
    the store knows which file each link must reach."""
    index = Path(index)
    tmp = partial_path(index)
    rel = shard_dir(index).name
    shards = list(shards)
    digests = {}
    for strength, corruption in shards:
        variant = "clean" if strength is None else f"{strength}/{corruption}"
        found = read_shard_attrs(shard_path(index, strength, corruption)) or {}
        if not found.get("shard_sha256"):
            raise StoreError(f"{shard_path(index, strength, corruption)}: no complete shard of {variant!r} to link")
        digests[variant] = found["shard_sha256"]
    attrs = dict(attrs) | {"shard_sha256": digests}
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
        if self.attrs.get("format") in OLD_FORMATS:
            self._f.close()
            raise StoreError(old_format_message(self.path, self.attrs.get("format")))
        if self.attrs.get("format") != FORMAT:
            self._f.close()
            raise StoreError(f"{self.path}: not a DAVIS-C index file (format {self.attrs.get('format')!r})")
        videos = self.attrs.get("videos")
        if not isinstance(videos, list) or not all(isinstance(v, str) for v in videos) or \
                not isinstance(self.attrs.get("corruptions"), list):
            self._f.close()
            raise StoreError(f"{self.path}: the index's 'videos' / 'corruptions' attributes are not lists of names "
                             "(damaged or edited index); rerun the build")
        self.videos: list[str] = list(videos)
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
        """What is wrong with the linked shards (cheap: no frame is read; :func:`shard_problems`): a
        missing, unreadable or incomplete file, a file holding another variant (swapped or renamed), one of
        another build, a video of the index that a shard lacks, an attribute edited after the build, or a
        shard other than the one the index recorded."""
        out = []
        key = self.attrs.get("build_key")
        recorded = self.attrs.get("shard_sha256")
        for variant in (self.variants if variants is None else variants):
            path = self.shard_file(variant)
            want = recorded.get(variant) if isinstance(recorded, dict) else None
            found = shard_problems(path, variant, build_key=key, videos=self.videos, expected_sha256=want)
            if not found and want is None:
                found = [f"{self.path}: the index records no digest for its link {variant!r} -> {path} (edited "
                         "index); rerun the build"]
            out += found
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
                    name = self.variant_frame_names(strength, corruption, video)[i]
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

    def video_digest(self, variant: str, video: str) -> str:
        """The ``video_sha256`` of ``(variant, video)`` recorded at build time, after checking that it still
        matches the stored attributes (frame hashes, frame names, seed ...).  Raises :class:`StoreError`."""
        path = self.shard_file(variant)
        g = self._group(variant, video)
        try:
            ga = dict(g.attrs.items())
            root = dict(g.file.attrs.items())
        except OSError as exc:
            raise StoreError(f"{path}: {variant}/{video}: unreadable attributes ({exc})") from exc
        want = _unattr(ga.get("video_sha256"))
        if want is None or want != _video_digest(ga, root.get("variant"), root.get("build_key"), video) \
                or _unattr(root.get("variant")) != variant:
            raise StoreError(f"{path}: variant {variant!r}, video {video!r}: the attributes do not match their "
                             "digest recorded at build time (edited or swapped shard); rerun the build")
        return want

    def identity(self, variant: str, video: str) -> str:
        """What one ``(variant, video)`` of this store *is*, as one SHA-256: the index's build key, the
        variant's ``video_sha256`` (its frames' hashes, seed, variant, ...) and the clean shard's (frame names,
        annotations' hash, object ids).  Equal identities mean the same frames, annotations and names; the
        unit record of :mod:`harness` can use it as the data part of a unit's identity."""
        parts = {"build_key": self.attrs.get("build_key"), "variant": variant, "video": video,
                 "frames": self.video_digest(variant, video), "clean": self.video_digest("clean", video)}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

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
        strength, _, corruption = variant.partition("/")
        try:
            names = self.variant_frame_names(strength or None, corruption or None, video) if variant != "clean" \
                else self.frame_names(video)
        except StoreError:
            names = []
        out = [f"{where}, frame {names[i] if i < len(names) else f'#{i}'}: stored bytes do not match their SHA-256"
               for i, (x, want) in enumerate(zip(raw, hashes)) if hashlib.sha256(x.tobytes()).hexdigest() != want]
        if variant == "clean":
            try:
                self.masks(video)
            except StoreError as exc:
                out.append(str(exc))
        elif "masks" in g:  # the temporal suite's shake: its own annotations
            try:
                self.temporal(strength, corruption, video)
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

    def variant_frame_names(self, strength: str | None, corruption: str | None, video: str) -> list[str]:
        """The names of the frames a variant stores: the video's (:meth:`frame_names`), or for the temporal
        suite's stride the kept frames' names only."""
        names = self.frame_names(video)
        if strength is None:
            return names
        try:
            kept = _unattr(self._group(f"{strength}/{corruption}", video).attrs.get("kept_frames"))
        except OSError as exc:
            raise StoreError(f"{self.shard_file(f'{strength}/{corruption}')}: {strength}/{corruption}/{video}: "
                             f"unreadable attributes ({exc})") from exc
        return names if kept is None else [names[i] for i in kept]

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
        names = self.frame_names(video)
        temporal = self.temporal(strength, corruption, video)
        if temporal is None:
            return Video(name=video, frames=frames, masks=masks,
                         object_ids=tuple(self._clean_attr(video, "object_ids")),
                         frame_names=names, **self._extras(cg, masks))
        kept = temporal["kept_frames"]
        if kept is not None:  # stride: the kept frames are the video (their annotations and names)
            masks, names = masks[kept], [names[i] for i in kept]
        if temporal["masks"] is not None:  # shake: the annotations moved with the frames
            masks = temporal["masks"]
        if len(masks) != len(frames):
            raise StoreError(f"{self.shard_file(f'{strength}/{corruption}')}: {strength}/{corruption}/{video}: "
                             f"{len(frames)} frames but {len(masks)} annotations (damaged shard); rerun the build")
        return Video(name=video, frames=frames, masks=masks, object_ids=tuple(self._clean_attr(video, "object_ids")),
                     frame_names=names, events=tuple(tuple(e) for e in temporal["events"]))

    def temporal(self, strength: str, corruption: str, video: str) -> dict[str, Any] | None:
        """What a temporal-suite variant stores besides its frames (None for any other variant):
        ``kept_frames`` (stride: the source frame indices kept, else None), ``events`` (freeze / burst runs
        ``[start, end)``), ``schedule`` (the per-frame draws) and ``masks`` (shake: its translated
        annotations, checked against their SHA-256 recorded at build time; else None)."""
        key = f"{strength}/{corruption}"
        g = self._group(key, video)
        path = self.shard_file(key)
        try:
            ga = {k: _unattr(v) for k, v in g.attrs.items()}
            if "events" not in ga:
                return None
            masks = g["masks"][()] if "masks" in g else None
        except (OSError, KeyError) as exc:
            raise StoreError(f"{path}: variant {key!r}, video {video!r}: unreadable ({' '.join(str(exc).split())})") \
                from exc
        if masks is not None and masks_digest(masks) != ga.get("masks_sha256"):
            raise StoreError(f"{path}: variant {key!r}, video {video!r}: the stored annotations do not match their "
                             "SHA-256 recorded at build time (damaged file)")
        return {"kept_frames": ga.get("kept_frames"), "events": ga.get("events") or [],
                "schedule": ga.get("schedule") or {}, "masks": masks}

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
