"""Build DAVIS-C (DAVIS-2017 val x corruptions x strengths) into a sharded HDF5 store.

    python -m davis_c.build --root DAVIS --out davis_c.h5            # all weight-free corruptions
    python -m davis_c.build --sample                                 # synthetic sample, minutes, no download
    python -m davis_c.build --root DAVIS --style-weights magenta.pth --styles DAVIS-C/styles   # + style1..4

Work is split in tasks of one (strength, video) for the weight-free corruptions and of one video with all
its strengths for the neural styles (the network has no severity input: one pass per (frame, style) gives
low, med and high), computed in ``--workers`` processes and written in a fixed order by this process into
one shard per (strength, corruption); a shard is renamed into place only when all its videos are in, so a
killed build resumes where it stopped (complete shards are kept) and the result is byte-identical to an
uninterrupted build whatever ``--workers`` is.  The seed of every (corruption, strength, video) is derived
from ``--seed`` and the names (:func:`davis_c.store.derive_seed`).  Style shards also record the weights'
SHA-256 and the style images' md5s (``davis_c.stylize.describe_style_setup``, incl. the
``style_weights_random_init`` flag); other weights or images rebuild them on rerun.  crf shards record the
ffmpeg identity (version line and binary SHA-256) in their key: a resumed build with another ffmpeg stops
(``--force`` rebuilds them), so one store never mixes ffmpeg builds.

The temporal suite (``--suite temporal``: freeze, stride, bursts, packet loss, flicker, shake;
:mod:`davis_c.corruptions.temporal_suite`) is built into the same store, one shard per (strength,
corruption) like DAVIS-C's, and never by a plain build: the paper's 14 x 3 shards and their bytes are the
same whether or not a store also holds it.  Its video groups also record ``kept_frames`` (stride: the source
frames kept), ``events`` (freeze runs, burst on-runs) and ``schedule`` (the per-frame draws), and shake's
its translated annotations (``masks``, void 255 where padded).

Reliability: the build holds ``<out>.lock`` (``common.locks``), so a second build into the same ``--out``
stops at once naming the holder's pid; every shard records the SHA-256 of every frame, checked on every
read; crf work folders live in ``<out stem>_shards/.tmp/`` (``<out>.shards/`` for an ``--out`` not ending in ``.h5``) and are removed by the next build; worker
processes exit when the builder dies; SIGTERM is handled like Ctrl-C (status 143, complete shards kept);
a full or read-only disk gives one line naming the file and the cause, status 2, and no ``*.partial`` file.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import multiprocessing
import os
import shutil
import socket
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from tqdm import tqdm

from common.cli import prog
import davis_c
from davis_c import corruptions as C
from davis_c.codec import CODECS
from davis_c.corruptions import crf as _crf
from davis_c.corruptions import packet_loss as _packet_loss
from common.cli import cli_main, raise_if_terminated
from davis_c.datasets.stored import build_attrs, clean_video_attrs, open_reader
from davis_c.datasets import Davis2017
from davis_c.davis import DavisError
from common.locks import OutputLock
from common.vocabulary import DAVIS_C_SUITE, SUITES, TEMPORAL_SUITE
from common.progress import Progress, Relay, null_tick
from davis_c.store import (FORMAT, INTEGRITY, ShardWriter, StoreError, decode_frame, derive_seed, encode_frame,
                           partial_path, read_shard_attrs, shard_dir, shard_path, shard_problems, write_index)
from common.workers import exit_with_parent, stop_pool

__all__ = ["build", "main", "BuildError", "SUITE_NAMES", "sample_root", "DAVIS_URL", "lock_path", "temp_area", "STEPS", "shard_groups",
           "group_arguments", "BuildSettings", "library_versions"]

DAVIS_URL = "https://davischallenge.org/davis2017/code.html"
STYLE_HELP = ("neural styles need --style-weights FILE --styles DIR "
              "(docs/building.md, section 'Neural styles', says how to obtain and convert the weights)")


#: the parts of a build (``build(..., steps=...)``)
STEPS = ("clean", "corrupted", "index")


class BuildError(RuntimeError):
    """The build cannot proceed (bad arguments, incompatible existing shards, ...)."""


#: the suites ``--suite`` builds (common.vocabulary.SUITES)
SUITE_NAMES = {DAVIS_C_SUITE: tuple(C.CORRUPTIONS), TEMPORAL_SUITE: tuple(C.TEMPORAL)}
#: the benchmarks a temporal build may come from (their videos are annotated on every frame)
_TEMPORAL_DATASETS = (None, "davis2017", "davis2016")


def _is_neural(name: str) -> bool:
    return name in C.CORRUPTIONS and C.get(name).kind == "neural"


@dataclass(frozen=True)
class _Made:
    """One temporal variant of one video, encoded: its frames, the attributes it adds to its video group
    (``kept_frames``, ``events``, ``schedule``) and its own annotations (shake) or None."""

    images: list[bytes]
    attrs: dict[str, Any]
    masks: np.ndarray | None = None


# ------------------------------------------------------------------------------------------------ source
def read_frames(ds: Davis2017, name: str) -> tuple[list[bytes], np.ndarray]:
    """The original JPEG bytes of a video and the frames decoded from them with OpenCV (the decoder the
    official script uses)."""
    jpgs, _ = ds.frame_paths(name)
    data, frames = [], []
    for p in jpgs:
        try:
            data.append(p.read_bytes())
            frames.append(decode_frame(data[-1], str(p)))
        except (OSError, StoreError) as exc:
            raise DavisError(f"{p}: cannot read frame ({exc})") from exc
        if frames[-1].shape != frames[0].shape:
            raise DavisError(f"{p}: frame size {frames[-1].shape[:2]} differs from the video's {frames[0].shape[:2]}")
    return data, np.stack(frames)


def load_source(ds: Davis2017, name: str):
    """One source video, fully checked: the dataset's Video (frames, annotations, objects), the original
    JPEG bytes and the OpenCV-decoded frames."""
    video = ds.load(name)  # validates frames, annotations and sizes; DavisError names the file
    data, frames = read_frames(ds, name)
    if frames.shape != video.frames.shape:
        raise DavisError(f"video {name!r}: OpenCV decodes {frames.shape}, PIL {video.frames.shape}")
    return video, data, frames


def _digest(chunks: Sequence[bytes]) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(hashlib.sha256(c).digest())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ workers
@dataclass(frozen=True)
class _Task:
    """One video under some (strength, corruptions) jobs.  ``group`` names the shards it feeds (one
    strength's weight-free corruptions, or every strength of the neural styles) for the progress bar."""

    root: str
    image_set: str
    resolution: str
    year: str
    group: str
    video: str
    jobs: tuple[tuple[str, tuple[str, ...]], ...]   # ((strength, corruption names), ...)
    seed: int
    codec: str
    tmp_dir: str | None = None   # where crf_compression makes its work folders
    dataset: str | None = None  # davis_c.datasets name; None = DAVIS-2017

    @property
    def variants(self) -> list[tuple[str, str]]:
        return [(s, n) for s, names in self.jobs for n in names]


_WORKER_DS: dict[tuple, Davis2017] = {}
_TICK: Callable[[int], None] = null_tick  # counts frame-variants done (the parent's bar, or its Relay)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def limit_torch_threads(workers: int) -> int | None:
    """In a worker process of a ``--workers N`` build, give torch ``cores // N`` threads (at least 1):
    by default every process would start one thread per core and N of them oversubscribe the CPU.
    Only when torch is already imported (the neural styles load it); returns the count set, or None."""
    if workers <= 1 or "torch" not in sys.modules:
        return None
    import torch

    n = max(1, _cpu_count() // workers)
    torch.set_num_threads(n)
    return n


def _init_worker(style_weights: str | None, styles_dir: str | None, device: str | None,
                 workers: int = 1, progress_queue=None) -> None:
    global _TICK
    if style_weights:
        C.load_styles(style_weights, styles_dir, device)
        if workers > 1:
            # embeddings at torch's default thread count, as a --workers 1 build computes them: the
            # predictor's results differ in the last bits with the thread count (frames must not)
            C.warm_styles()
    limit_torch_threads(workers)
    if workers > 1:  # cartoon's mean-shift threads: each worker its share of the cores (bytes unchanged)
        from davis_c.corruptions import meanshift

        meanshift.set_threads(max(1, _cpu_count() // workers))
    if progress_queue is not None:
        Relay.install(progress_queue)
        _TICK = Relay.tick


def _run_task(task: _Task) -> dict[tuple[str, str], list[bytes] | _Made]:
    """Corrupt one video with every (strength, corruption) of the task; returns encoded frames per pair.

    All strengths of one corruption come from :func:`davis_c.corruptions.corrupt_strengths`, so a neural
    style runs its network once per frame for low, med and high."""
    key = (task.root, task.image_set, task.resolution, task.year, task.dataset)
    ds = _WORKER_DS.get(key)
    if ds is None:
        ds = _WORKER_DS[key] = open_reader(task.root, task.image_set, task.resolution, task.year, task.dataset)
    jpegs, frames = read_frames(ds, task.video)  # fully checked once by the clean shard
    out: dict[tuple[str, str], list[bytes] | _Made] = {}
    names = list(dict.fromkeys(n for _, ns in task.jobs for n in ns))
    masks = None
    for name in names:
        strengths = [s for s, ns in task.jobs if name in ns]
        if name in C.TEMPORAL:
            if masks is None and C.get_temporal(name).changes_masks:
                masks = ds.load(task.video).masks
            for s in strengths:
                res = C.corrupt_temporal(frames, name, C.STRENGTHS[s], seed=derive_seed(task.seed, name, s, task.video),
                                         masks=masks)
                attrs = {"events": [list(e) for e in res.events], "schedule": res.schedule}
                if res.kept is not None:
                    attrs["kept_frames"] = list(res.kept)
                out[s, name] = _Made([encode_frame(f, task.codec) for f in res.frames], attrs, res.masks)
                _TICK(len(frames))
            continue
        if name == "crf_compression" and task.codec == "jpeg":
            for s in strengths:  # ffmpeg's own JPEG files, as released
                out[s, name] = _crf.crf_jpegs(jpegs, C.STRENGTHS[s], task.tmp_dir, progress=_TICK)
            continue
        sevs = {s: C.STRENGTHS[s] for s in strengths}
        seeds = {C.STRENGTHS[s]: derive_seed(task.seed, name, s, task.video) for s in strengths}
        results = C.corrupt_strengths(frames, name, list(sevs.values()), seeds=seeds, source_jpegs=jpegs,
                                      progress=_TICK)
        encoded: dict[int, list[bytes]] = {}  # low and med of a style are the same array: encode once
        for s, sev in sevs.items():
            res = results[sev]
            if id(res) not in encoded:
                encoded[id(res)] = [encode_frame(f, task.codec) for f in res]
            out[s, name] = encoded[id(res)]
    return out


class _Runner:
    """Runs tasks in order (in-process, or in a process pool with a bounded look-ahead)."""

    def __init__(self, workers: int, init_args: tuple, progress: Progress | None = None) -> None:
        global _TICK
        self.pool = self.relay = None
        if workers > 1:
            ctx = multiprocessing.get_context("spawn")
            self.relay = Relay(progress, ctx) if progress is not None else None
            self.pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_pool_worker,
                                            initargs=(os.getpid(), *init_args, workers,
                                                      self.relay and self.relay.queue))
        else:
            _init_worker(*init_args)
            _TICK = progress.update if progress is not None else null_tick
        self.ahead = 2 * workers

    def map(self, tasks: Sequence[_Task]):
        if self.pool is None:
            for t in tasks:
                yield t, _run_task(t)
            return
        queue: deque = deque()
        it = iter(tasks)
        for t in it:
            queue.append((t, self.pool.submit(_run_task, t)))
            if len(queue) >= self.ahead:
                break
        while queue:
            t, fut = queue.popleft()
            res = fut.result()
            nxt = next(it, None)
            if nxt is not None:
                queue.append((nxt, self.pool.submit(_run_task, nxt)))
            yield t, res

    def close(self, cancel: bool = False) -> None:
        """Shut the pool down; ``cancel`` (an error or an interrupt) ends the workers at once."""
        global _TICK
        if self.pool is not None:
            if cancel:
                stop_pool(self.pool)
            else:
                self.pool.shutdown(wait=True)
        if self.relay is not None:
            self.relay.close()
        _TICK = null_tick


def _init_pool_worker(parent: int, *init_args) -> None:
    exit_with_parent(parent)  # never outlive the builder (kill -9 of the parent included)
    _init_worker(*init_args)


# ------------------------------------------------------------------------------------------------ build
#: attributes of ``davis_c.stylize.describe_style_setup`` (+ our key) stored on style shards and the index
_STYLE_ATTRS = ("style_weights_sha256", "style_weights_random_init", "style_images_md5", "style_images_official",
                "style_key")


def _describe_styles(style_weights: str | os.PathLike, styles_dir: str | os.PathLike) -> dict[str, Any]:
    """What the style shards are made from (weights sha256, random-init flag, style images' md5s); also
    checks the weights file and the style images, so a bad setup fails before any work."""
    from davis_c import stylize  # imports torch: only when styles are built

    try:
        return dict(stylize.describe_style_setup(style_weights, styles_dir))
    except (OSError, ValueError) as exc:  # CheckpointError is a ValueError
        raise BuildError(f"style setup ({style_weights}, {styles_dir}): {exc}") from exc


def _style_key(build_key: str, setup: dict[str, Any]) -> str:
    """Key of a style shard: the build's settings plus the weights' SHA-256 and the style images' md5s,
    so other weights or images rebuild the styles on rerun."""
    ident = {"build_key": build_key, "style_weights_sha256": setup.get("style_weights_sha256"),
             "style_images_md5": setup.get("style_images_md5")}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def sample_root(cache: str | os.PathLike | None = None) -> Path:
    """The synthetic DAVIS sample in a cache folder (``$DAVIS_C_CACHE`` or ``~/.cache/davis_c``), made once."""
    from davis_c.sample import MARKER, make_sample

    base = Path(cache or os.environ.get("DAVIS_C_CACHE") or Path.home() / ".cache" / "davis_c")
    root = base / "sample" / "DAVIS"
    if not (root / MARKER).is_file():
        make_sample(root)
    return root


def _select(requested: Sequence[str] | None, known: Sequence[str], what: str) -> list[str]:
    if not requested:
        return list(known)
    unknown = [r for r in requested if r not in known]
    if unknown:
        raise BuildError(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
    return [k for k in known if k in requested]  # canonical order, duplicates removed


def _remove_stale_partials(folder: Path, pattern: str = "*.partial") -> None:
    """Remove ``*.<pid>.partial`` files left by killed builds (their process no longer exists)."""
    if not folder.is_dir():
        return
    for p in folder.glob(pattern):
        try:
            pid = int(p.suffixes[-2].lstrip("."))
            os.kill(pid, 0)
            alive = pid != os.getpid()
        except (ValueError, IndexError, ProcessLookupError):
            alive = False
        except PermissionError:
            alive = True
        if not alive:
            p.unlink(missing_ok=True)


def lock_path(out: str | os.PathLike, part: str | None = None) -> Path:
    """The lock file a build of ``out`` holds: ``<out>.lock`` next to the index; one part of a parallel
    build (``part``: its steps, strengths and corruptions) locks only that part, so the parts run together."""
    out = Path(out)
    if part is None:
        return out.with_name(f"{out.name}.lock")
    return out.with_name(f"{out.name}.part-{hashlib.sha256(part.encode()).hexdigest()[:12]}.lock")


def temp_area(out: str | os.PathLike) -> Path:
    """The build's own temporary folder (crf work folders): ``<out stem>_shards/.tmp``."""
    return shard_dir(out) / ".tmp"


def _ffmpeg_key(build_key: str, ident: dict[str, str], pipeline: str) -> str:
    """Key of a crf shard: the build's settings plus the ffmpeg version line, binary hash and the digest of
    the encoder arguments (:func:`davis_c.corruptions.crf.pipeline_digest`)."""
    return hashlib.sha256(json.dumps({"build_key": build_key, "ffmpeg": ident["version"],
                                      "ffmpeg_sha256": ident["sha256"], "crf_pipeline": pipeline},
                                     sort_keys=True).encode()).hexdigest()


def _no_empty_shard_folder(fn):
    """A build that fails removes the ``<out stem>_shards/`` folder again if it created it and left it
    empty (a shard folder is only worth keeping with complete shards in it)."""
    @functools.wraps(fn)
    def wrapper(root, out="davis_c.h5", *args, **kwargs):
        sdir = shard_dir(Path(out))
        existed = sdir.exists()
        try:
            return fn(root, out, *args, **kwargs)
        except BaseException:
            if not existed and sdir.is_dir() and not any(sdir.iterdir()):
                sdir.rmdir()
            raise
    return wrapper


@_no_empty_shard_folder
def build(root: str | os.PathLike, out: str | os.PathLike = "davis_c.h5", *,
          corruptions: Sequence[str] | None = None, strengths: Sequence[str] | None = None,
          videos: Sequence[str] | None = None, image_set: str = "val", resolution: str = "480p",
          year: str = "2017", workers: int = 1, seed: int = 0, codec: str = "jpeg", force: bool = False,
          style_weights: str | os.PathLike | None = None, styles_dir: str | os.PathLike | None = None,
          device: str | None = None, progress: bool = True,
          log: Callable[[str], None] = print, dataset: str | None = None,
          steps: Sequence[str] = STEPS, suite: str = DAVIS_C_SUITE) -> dict[str, Any]:
    """Build (or complete) a DAVIS-C store; returns a summary dict.  See the module docstring.

    ``steps`` (default all): ``clean`` (the clean shard), ``corrupted`` (the selected corrupted shards),
    ``index`` (link every complete shard into the index file).  A build without ``index`` is one part
    of a parallel build (a SLURM array task: :func:`build_group`): it leaves other builds' partial
    files alone and writes no index.  Raises :class:`common.locks.LockHeld` when another build of the
    same part holds its lock (``<out>.lock`` for a whole build).

    ``suite``: ``davis-c`` (the paper's corruptions, the default) or ``temporal`` (the temporal suite;
    ``corruptions`` then names its members).  The index links the complete shards of both.
    """
    t0 = time.perf_counter()
    unknown_steps = set(steps) - set(STEPS)
    if unknown_steps:
        raise BuildError(f"unknown build step(s) {', '.join(sorted(unknown_steps))}; known: {', '.join(STEPS)}")
    out = Path(out)
    if codec not in CODECS:
        raise BuildError(f"--codec must be one of {CODECS} (got {codec!r})")
    if workers < 1:
        raise BuildError("--workers must be >= 1")
    root = Path(root)
    if not root.is_dir():
        raise BuildError(f"DAVIS root folder not found: {root}. Download DAVIS-2017 (TrainVal, 480p) from "
                         f"{DAVIS_URL} and pass its DAVIS folder with --root, or run with --sample to build "
                         "from a small synthetic sample.")
    ds = open_reader(root, image_set, resolution, year, dataset)  # dataset None: DAVIS-2017
    image_set = getattr(ds, "split", None) or getattr(ds, "image_set", image_set)
    vids = _select(videos, ds.videos, f"video(s) for {getattr(ds, 'set_file', ds.root)}")
    strs = _select(strengths, list(C.STRENGTHS), "strength(s)")
    if bool(style_weights) != bool(styles_dir):
        raise BuildError("--style-weights and --styles go together (weights file and folder of 1.png..4.png)")
    if suite not in SUITES:
        raise BuildError(f"--suite must be one of {', '.join(SUITES)} (got {suite!r})")
    if suite == TEMPORAL_SUITE and dataset not in _TEMPORAL_DATASETS:
        raise BuildError(f"--suite temporal is built from DAVIS-2017 or DAVIS-2016 (every frame annotated), "
                         f"not --dataset {dataset}")
    explicit = corruptions is not None and len(corruptions) > 0
    names = _select(corruptions, list(SUITE_NAMES[suite]), f"corruption(s) of the {suite} suite")
    skipped: dict[str, str] = {}
    neural = [n for n in names if _is_neural(n)]
    if neural and not style_weights:
        if explicit:
            raise BuildError(f"{', '.join(neural)}: {STYLE_HELP}")
        for n in neural:
            skipped[n] = STYLE_HELP
        names = [n for n in names if n not in neural]
        log(f"skipping {', '.join(neural)}: {STYLE_HELP}")
    style_setup: dict[str, Any] | None = None
    if any(_is_neural(n) for n in names):
        style_setup = _describe_styles(style_weights, styles_dir)  # validates weights + images before any work
        if style_setup.get("style_weights_random_init"):
            log("note: the style weights are randomly initialised (test/demo weights, not the real styles); "
                "the style shards are flagged style_weights_random_init = True")
    ffmpeg: dict[str, str] | None = None
    for coded in ("crf_compression", "packet_loss"):  # the corruptions that run ffmpeg
        if coded not in names:
            continue
        try:
            ffmpeg = _crf.ffmpeg_identity()
        except _crf.FfmpegUnavailable as exc:
            skipped[coded] = str(exc)
            names.remove(coded)
            log(f"skipping {coded}: {exc}")
        except _crf.FfmpegIdentityError as exc:
            raise BuildError(f"{coded}: {exc}") from exc

    out.parent.mkdir(parents=True, exist_ok=True)
    part = None if "index" in steps else ",".join(steps) + ":" + ",".join(strs) + ":" + ",".join(names)
    settings = BuildSettings(
        root=root, out=out, t0=t0, vids=tuple(vids), strs=tuple(strs), names=tuple(names), skipped=skipped,
        explicit=explicit, style_setup=style_setup, ffmpeg=ffmpeg, image_set=image_set, resolution=resolution,
        year=str(year), workers=workers, seed=int(seed), codec=codec, force=force, style_weights=style_weights,
        styles_dir=styles_dir, device=device, progress=progress, log=log, dataset=dataset, steps=tuple(steps))
    with OutputLock(lock_path(out, part), f"the DAVIS-C store {out}" + (f" (part {part})" if part else "")):
        try:
            return _build_locked(ds, settings)
        except BaseException:
            # a SIGTERM or Ctrl-C can land between a writer's creation and the code that would abort it:
            # whatever this process still has half-written goes here, whichever line was interrupted
            _remove_partials_of_this_process(settings)
            raise


@dataclass(frozen=True)
class BuildSettings:
    """What :func:`build` decided from its arguments (checked, canonical order), for the steps below."""

    root: Path
    out: Path
    t0: float
    vids: tuple[str, ...]
    strs: tuple[str, ...]
    names: tuple[str, ...]
    skipped: dict[str, str]
    explicit: bool
    style_setup: dict[str, Any] | None
    ffmpeg: dict[str, str] | None
    image_set: str
    resolution: str
    year: str
    workers: int
    seed: int
    codec: str
    force: bool
    style_weights: str | os.PathLike | None
    styles_dir: str | os.PathLike | None
    device: str | None
    progress: bool
    log: Callable[[str], None]
    dataset: str | None
    steps: tuple[str, ...]

    @property
    def whole(self) -> bool:
        """A whole build (it writes the index) rather than one part of a parallel build."""
        return "index" in self.steps


@dataclass(frozen=True)
class _Keys:
    """The identity of this build: the source digests, the build key and the attributes every shard gets."""

    sources: dict[str, str]
    config: dict[str, Any]
    build_key: str
    common: dict[str, Any]
    style_attrs: dict[str, Any]
    ffmpeg_attrs: dict[str, Any]


def library_versions(neural: bool = False) -> dict[str, str]:
    """Versions of every library whose code decides stored bytes (part of the build key, so a resumed
    build never mixes them): OpenCV (JPEG encode/decode, blurs, filters, colour conversions), NumPy
    (random streams, float maths), numba (the compiled kernels), Pillow (reading the annotations) and, for
    the neural styles, torch."""
    import cv2
    import numba
    import PIL

    out = {"numpy": np.__version__, "opencv": cv2.__version__, "numba": numba.__version__,
           "pillow": PIL.__version__}
    if neural:
        import torch

        out["torch"] = torch.__version__
    return out


def _prepare_area(cfg: BuildSettings) -> Path:
    """The shard folder exists; a whole build removes every leftover of a killed build (it holds the
    output lock: nothing else writes here); a part gets a work folder of its own.  Returns the crf work
    area."""
    sdir = shard_dir(cfg.out)
    sdir.mkdir(parents=True, exist_ok=True)
    tmp_area = temp_area(cfg.out)
    if cfg.whole:
        _remove_stale_partials(sdir)
        _remove_stale_partials(cfg.out.parent, f"{cfg.out.name}.*.partial")  # an index write that was killed
        shutil.rmtree(tmp_area, ignore_errors=True)  # crf work folders of a killed build
        return tmp_area
    return tmp_area / f"part-{socket.gethostname()}-{os.getpid()}"


def _keys(ds: Davis2017, cfg: BuildSettings) -> _Keys:
    sources: dict[str, str] = {}
    for v in cfg.vids:
        jpgs, _ = ds.frame_paths(v)
        sources[v] = _digest([p.read_bytes() for p in jpgs])
    config = {"format": FORMAT, "toolkit_version": davis_c.__version__, "seed": int(cfg.seed), "codec": cfg.codec,
              "image_set": cfg.image_set, "resolution": cfg.resolution, "year": str(cfg.year),
              "videos": list(cfg.vids), "source_sha256": sources, "integrity": INTEGRITY,
              "libraries": library_versions(neural=cfg.style_setup is not None)} | build_attrs(ds)
    build_key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    common = {k: v for k, v in config.items() if k != "source_sha256"} | {"build_key": build_key}
    style_attrs = (cfg.style_setup | {"style_key": _style_key(build_key, cfg.style_setup)}) if cfg.style_setup else {}
    ffmpeg_attrs = {}
    if cfg.ffmpeg:
        pipeline = _crf.pipeline_digest()
        ffmpeg_attrs = {"ffmpeg": cfg.ffmpeg["version"], "ffmpeg_sha256": cfg.ffmpeg["sha256"],
                        "crf_pipeline": pipeline, "ffmpeg_key": _ffmpeg_key(build_key, cfg.ffmpeg, pipeline)}
    return _Keys(sources, config, build_key, common, style_attrs, ffmpeg_attrs)


def _other_settings(attrs: dict[str, Any], keys: _Keys) -> str:
    """Which recorded settings of an existing shard differ from this build's (for the refusal)."""
    diff = [k for k in sorted(keys.common) if k not in ("build_key", "source_sha256")
            and attrs.get(k) != keys.common[k]]
    if "libraries" in diff and isinstance(attrs.get("libraries"), dict):
        libs = attrs["libraries"]
        changed = [f"{n} {libs.get(n)} -> {v}" for n, v in keys.common["libraries"].items() if libs.get(n) != v]
        diff[diff.index("libraries")] = "libraries (" + ", ".join(changed) + ")"
    return ", ".join(diff) or "source frames"


def _reusable(path: Path, variant: str, keys: _Keys, cfg: BuildSettings, neural: bool = False) -> bool:
    """A complete shard of this build that can be kept.  Other settings are refused (so is a crf shard of
    another ffmpeg build, and a file that is not the ``variant`` shard it is named as: swapped, renamed or
    edited); a style shard made with other weights or style images (its ``style_key``) is rebuilt."""
    attrs = read_shard_attrs(path)
    if attrs is None:
        return False
    if cfg.force:
        return False
    if attrs.get("build_key") != keys.build_key:
        raise BuildError(f"{path}: existing shard was built with other settings or source frames "
                         f"(differs in: {_other_settings(attrs, keys)}); use --force to rebuild, or another --out")
    wrong = shard_problems(path, variant, build_key=keys.build_key, videos=list(cfg.vids))
    if wrong:
        raise BuildError(f"{wrong[0]} (not reused; --force rebuilds it)")
    ffmpeg_attrs = keys.ffmpeg_attrs
    if attrs.get("corruption") == "crf_compression" and ffmpeg_attrs \
            and attrs.get("ffmpeg_key") != ffmpeg_attrs["ffmpeg_key"]:
        if attrs.get("ffmpeg_sha256") == ffmpeg_attrs["ffmpeg_sha256"]:
            raise BuildError(f"{path}: existing crf shard was made with other crf encoder settings (an older "
                             "toolkit whose x265 settings let thread timing change the bytes, see "
                             "docs/building.md) than this build's; use --force to rebuild every crf shard, "
                             "or another --out")
        raise BuildError(f"{path}: existing crf shard was made by another ffmpeg ({attrs.get('ffmpeg')!r}, "
                         f"sha256 {str(attrs.get('ffmpeg_sha256'))[:16]}...) than this one "
                         f"({ffmpeg_attrs['ffmpeg']!r} at {cfg.ffmpeg['path']}, sha256 "
                         f"{ffmpeg_attrs['ffmpeg_sha256'][:16]}...); crf output depends on the ffmpeg build: "
                         "use the same ffmpeg (DAVIS_C_FFMPEG), --force to rebuild every crf shard, or another --out")
    if attrs.get("corruption") == "packet_loss" and ffmpeg_attrs and (
            attrs.get("ffmpeg_sha256") != ffmpeg_attrs["ffmpeg_sha256"]
            or attrs.get("packet_loss_pipeline") != _packet_loss.pipeline_digest()):
        raise BuildError(f"{path}: existing packet_loss shard was made by another ffmpeg ({attrs.get('ffmpeg')!r}) "
                         "or other encoder settings than this build's; its bytes depend on them: use the same "
                         "ffmpeg (DAVIS_C_FFMPEG), --force to rebuild it, or another --out")
    if neural and attrs.get("style_key") != keys.style_attrs["style_key"]:
        cfg.log(f"{path.name}: built with other style weights or style images; rebuilding it")
        return False
    return True


def _shards_written(cfg: BuildSettings) -> list[Path]:
    """The shard files this build (or this part of a parallel build) writes, by its steps."""
    return ([shard_path(cfg.out, None, None)] if "clean" in cfg.steps else []) + (
        [shard_path(cfg.out, s, n) for s in cfg.strs for n in cfg.names] if "corrupted" in cfg.steps else [])


def _remove_partials_of_this_process(cfg: BuildSettings) -> None:
    """Remove the ``*.<this pid>.partial`` files of the shards (and index) this build writes.  Named by
    shard, not by a folder-wide pattern, so a part of a parallel build on another host with the same pid
    keeps its files."""
    for path in _shards_written(cfg) + ([cfg.out] if cfg.whole else []):
        partial_path(path).unlink(missing_ok=True)


def _remove_own_partials(cfg: BuildSettings) -> None:
    """One part of a parallel build: only this part's partial shards are ours to clean up."""
    for path in _shards_written(cfg):
        for p in path.parent.glob(f"{path.name}.*.partial"):
            p.unlink(missing_ok=True)


def _build_clean(ds: Davis2017, cfg: BuildSettings, keys: _Keys) -> bool:
    """The clean shard (also validates every source video before the heavy work); False when reused."""
    clean_path = shard_path(cfg.out, None, None)
    if "clean" not in cfg.steps or _reusable(clean_path, "clean", keys, cfg):
        return False
    with ShardWriter(clean_path, keys.common | {"kind": "clean", "variant": "clean",
                                                "source_sha256": keys.sources}) as w:
        for v in tqdm(cfg.vids, desc="clean", unit="video", disable=not cfg.progress, leave=False):
            video, jpegs, _ = load_source(ds, v)
            w.add_video(v, jpegs, {"frame_names": video.frame_names, "object_ids": list(video.object_ids),
                                   "n_frames": len(video), "height": int(video.frames.shape[1]),
                                   "width": int(video.frames.shape[2]),
                                   "frame_sha256": [hashlib.sha256(b).hexdigest() for b in jpegs]}
                        | clean_video_attrs(video), masks=video.masks)
        w.commit()
    return True


def _plan_tasks(cfg: BuildSettings, keys: _Keys, tmp_area: Path) -> tuple[list[_Task], list[str]]:
    """The corrupted shards' tasks and the shards reused as they are.  Weight-free: one task per
    (strength, video), strength after strength; neural: one task per video with every strength, so each
    frame goes through the network once per style."""
    if "corrupted" not in cfg.steps:
        return [], []
    is_neural = {n: _is_neural(n) for n in cfg.names}
    todo = {s: [n for n in cfg.names if not _reusable(shard_path(cfg.out, s, n), f"{s}/{n}", keys, cfg,
                                                      is_neural[n])] for s in cfg.strs}
    reused = [f"{s}/{n}" for s in cfg.strs for n in cfg.names if n not in todo[s]]
    task_args = (str(cfg.root), cfg.image_set, cfg.resolution, str(cfg.year))
    tasks = [_Task(*task_args, s, v, ((s, tuple(n for n in todo[s] if not is_neural[n])),), int(cfg.seed),
                   cfg.codec, str(tmp_area), cfg.dataset)
             for s in cfg.strs if any(not is_neural[n] for n in todo[s]) for v in cfg.vids]
    neural_jobs = tuple((s, tuple(n for n in todo[s] if is_neural[n])) for s in cfg.strs)
    neural_jobs = tuple(j for j in neural_jobs if j[1])
    if neural_jobs:
        tasks += [_Task(*task_args, "styles", v, neural_jobs, int(cfg.seed), cfg.codec, str(tmp_area),
                        cfg.dataset) for v in cfg.vids]
    return tasks, reused


def _corrupted_attrs(s: str, n: str, keys: _Keys) -> dict[str, Any]:
    if n in C.TEMPORAL:  # the temporal suite: its own parameters; no DAVIS-C kind
        t = C.get_temporal(n)
        attrs = keys.common | {"kind": "corrupted", "variant": f"{s}/{n}", "strength": s, "severity": C.STRENGTHS[s],
                               "corruption": n, "corruption_kind": "temporal-suite", "suite": TEMPORAL_SUITE,
                               "parameters": t.parameters(C.STRENGTHS[s]), "random": t.random}
        if n == "packet_loss":  # its bytes depend on the ffmpeg build, like crf's
            attrs |= {k: keys.ffmpeg_attrs[k] for k in ("ffmpeg", "ffmpeg_sha256")} | {
                "packet_loss_pipeline": _packet_loss.pipeline_digest()}
        return attrs
    c = C.get(n)
    attrs = keys.common | {"kind": "corrupted", "variant": f"{s}/{n}", "strength": s, "severity": C.STRENGTHS[s],
                           "corruption": n, "corruption_kind": c.kind, "parameters": c.parameters(C.STRENGTHS[s]),
                           "random": c.random}
    if n == "crf_compression":
        attrs |= keys.ffmpeg_attrs
    if c.kind == "neural":
        attrs |= keys.style_attrs
    return attrs


def _build_corrupted(ds: Davis2017, cfg: BuildSettings, keys: _Keys, tasks: list[_Task],
                     tmp_area: Path) -> tuple[list[str], int]:
    """Run the tasks (in ``--workers`` processes) and write their frames, in a fixed order, into one shard
    per (strength, corruption); a shard is committed when its last video is in.  Returns the shards built
    and the number of frame-variants; on any error every partial file and work folder goes."""
    vids = list(cfg.vids)
    n_frames = {v: len(ds.frame_paths(v)[0]) for v in vids}
    # one bar for all corrupted shards, in frame-variants, moved by the workers after every frame
    bar = Progress(sum(n_frames[t.video] * len(t.variants) for t in tasks),
                   f"corrupting ({len({v for t in tasks for v in t.variants})} shards)", "frame-variant",
                   enabled=cfg.progress and bool(tasks)) if tasks else None
    runner = _Runner(min(cfg.workers, len(tasks)), (str(cfg.style_weights) if cfg.style_weights else None,
                                                    str(cfg.styles_dir) if cfg.styles_dir else None, cfg.device),
                     bar) if tasks else None
    writers: dict[tuple[str, str], ShardWriter] = {}
    groups: set[str] = set()
    built: list[str] = []
    variants = 0
    try:
        for task, result in (runner.map(tasks) if runner else ()):
            raise_if_terminated()
            if task.group not in groups:
                groups.add(task.group)
                for s, n in task.variants:
                    writers[s, n] = ShardWriter(shard_path(cfg.out, s, n), _corrupted_attrs(s, n, keys))
            for s, n in task.variants:
                made = result[s, n]
                images, extra, masks = (made.images, made.attrs, made.masks) if isinstance(made, _Made) \
                    else (made, {}, None)
                want = len(extra["kept_frames"]) if "kept_frames" in extra else n_frames[task.video]
                if len(images) != want:
                    raise BuildError(f"{s}/{n} returned {len(images)} frames for {want} in video {task.video!r}")
                writers[s, n].add_video(task.video, images, {
                    "seed": derive_seed(cfg.seed, n, s, task.video), "n_frames": len(images),
                    "source_sha256": keys.sources[task.video]} | extra, masks=masks)
                variants += len(images)
            if task.video == vids[-1]:
                for s, n in task.variants:
                    writers.pop((s, n)).commit()
                    built.append(f"{s}/{n}")
    except BaseException:
        if runner is not None:  # first stop the workers (they may still be writing crf work files)
            runner.close(cancel=True)
        for w in writers.values():  # abort() never raises: every partial file goes
            w.abort()
        shutil.rmtree(tmp_area, ignore_errors=True)
        if bar is not None:
            bar.close()
        raise
    if runner is not None:
        runner.close()
    shutil.rmtree(tmp_area, ignore_errors=True)
    if bar is not None:
        bar.close()
    return built, variants


def _linked_shards(cfg: BuildSettings, keys: _Keys) -> tuple[list[tuple[str, str]], dict, dict]:
    """Every complete shard of this build, in benchmark order, that the index may link: style shards only
    with one weights/style-images setup (this build's, else the first one found), crf shards likewise only
    with one ffmpeg identity; and the style and ffmpeg attributes the index then carries."""
    present, setup_key, index_style = [], keys.style_attrs.get("style_key"), dict(keys.style_attrs)
    present_pl_ffmpeg = {"sha": keys.ffmpeg_attrs["ffmpeg_sha256"]} if keys.ffmpeg_attrs else {}
    ffmpeg_key, index_ffmpeg = keys.ffmpeg_attrs.get("ffmpeg_key"), dict(keys.ffmpeg_attrs)
    for s in C.STRENGTHS:
        for n in (*C.CORRUPTIONS, *C.TEMPORAL):
            path = shard_path(cfg.out, s, n)
            attrs = read_shard_attrs(path)
            if not attrs or attrs.get("build_key") != keys.build_key:
                continue
            wrong = shard_problems(path, f"{s}/{n}", build_key=keys.build_key, videos=list(cfg.vids))
            if wrong:
                cfg.log(f"not linked in the index: {wrong[0]}")
                continue
            if n == "crf_compression":
                if ffmpeg_key is None and attrs.get("ffmpeg_key"):
                    ffmpeg_key = attrs["ffmpeg_key"]
                    index_ffmpeg = {k: attrs[k] for k in ("ffmpeg", "ffmpeg_sha256", "crf_pipeline", "ffmpeg_key")
                                    if k in attrs}
                if not attrs.get("ffmpeg_key") or attrs.get("ffmpeg_key") != ffmpeg_key:
                    cfg.log(f"not linked in the index: {s}/{n} (made by another ffmpeg build or crf encoder "
                            f"settings: {attrs.get('ffmpeg')!r})")
                    continue
            if n == "packet_loss":  # one ffmpeg build per store (this build's, else the first found)
                pl_ffmpeg = present_pl_ffmpeg.setdefault("sha", attrs.get("ffmpeg_sha256"))
                if attrs.get("ffmpeg_sha256") != pl_ffmpeg:
                    cfg.log(f"not linked in the index: {s}/{n} (made by another ffmpeg build: {attrs.get('ffmpeg')!r})")
                    continue
            if _is_neural(n):
                if setup_key is None and attrs.get("style_key"):
                    setup_key = attrs["style_key"]
                    index_style = {k: attrs[k] for k in _STYLE_ATTRS if k in attrs}
                if attrs.get("style_key") != setup_key:
                    cfg.log(f"not linked in the index: {s}/{n} (built with other style weights or images)")
                    continue
            present.append((s, n))
    return present, index_style, index_ffmpeg


def _write_store_index(cfg: BuildSettings, keys: _Keys) -> tuple[dict[str, Any], int]:
    """Link every complete shard of this build into the index; returns the index's attributes and the
    number of corrupted shards linked."""
    present, index_style, index_ffmpeg = _linked_shards(cfg, keys)
    index_attrs = keys.common | {"strengths": [s for s in C.STRENGTHS if any(p[0] == s for p in present)],
                                 "corruptions": [n for n in (*C.CORRUPTIONS, *C.TEMPORAL)
                                                 if any(p[1] == n for p in present)],
                                 "severities": dict(C.STRENGTHS), "source_sha256": keys.sources}
    if any(_is_neural(n) for _, n in present):
        index_attrs |= index_style
    if any(n == "crf_compression" for _, n in present):
        index_attrs |= index_ffmpeg
    write_index(cfg.out, index_attrs, [(None, None)] + present)
    return index_attrs, len(present)


def _build_locked(ds: Davis2017, cfg: BuildSettings) -> dict[str, Any]:
    """The build proper, with the output lock held: nothing else writes ``out``, so every leftover of
    an earlier build (partial shards, crf work folders) can be removed."""
    out, log = cfg.out, cfg.log
    tmp_area = _prepare_area(cfg)
    keys = _keys(ds, cfg)
    if not cfg.whole:
        _remove_own_partials(cfg)
    built = ["clean"] if _build_clean(ds, cfg, keys) else []
    tasks, reused = _plan_tasks(cfg, keys, tmp_area)
    done, variants = _build_corrupted(ds, cfg, keys, tasks, tmp_area)
    built += done
    skipped, explicit = cfg.skipped, cfg.explicit
    incomplete = {"incomplete": True} if explicit and {"crf_compression", "packet_loss"} & set(skipped) else {}

    if not cfg.whole:
        elapsed = time.perf_counter() - cfg.t0
        log(f"DAVIS-C part {', '.join(cfg.steps)} of {out}: built {len(built)} shard(s) ({', '.join(built) or 'none'}), "
            f"reused {len(reused)}; {variants} frame-variants in {elapsed:.1f} s; no index written")
        return {"out": str(out), "built": built, "reused": reused, "skipped": skipped, "frame_variants": variants,
                "seconds": round(elapsed, 2), "videos": len(cfg.vids), "steps": list(cfg.steps), **incomplete}

    index_attrs, linked = _write_store_index(cfg, keys)
    elapsed = time.perf_counter() - cfg.t0
    size = out.stat().st_size + sum(p.stat().st_size for p in shard_dir(out).glob("*.h5"))
    summary = {"out": str(out), "built": built, "reused": reused, "skipped": skipped,
               "frame_variants": variants, "seconds": round(elapsed, 2), "bytes": size,
               "strengths": index_attrs["strengths"], "corruptions": index_attrs["corruptions"],
               "videos": len(cfg.vids)}
    if cfg.style_setup:
        summary["style_setup"] = cfg.style_setup
    log(f"{keys.config.get('dataset_title', 'DAVIS-C')} store {out}: {linked} corrupted shards + "
        f"clean ({len(cfg.vids)} videos, {size / 2**20:.1f} MiB); built {len(built)} shard(s) now, reused "
        f"{len(reused)}; {variants} frame-variants in {elapsed:.1f} s"
        + (f" ({variants / elapsed:.1f}/s)" if variants else ""))
    by_reason: dict[str, list[str]] = {}
    for n, why in skipped.items():
        by_reason.setdefault(why, []).append(n)
    for why, ns in by_reason.items():
        log(f"  not built: {', '.join(ns)} ({why})")
    return summary | incomplete


def shard_groups(corruptions: Sequence[str] | None = None, strengths: Sequence[str] | None = None,
                 styles: bool = False, suite: str = DAVIS_C_SUITE) -> list[str]:
    """The parts of a parallel build (one SLURM array task each), in build order: ``clean``, one
    ``STRENGTH/CORRUPTION`` per weight-free shard, and one ``styles/NAME`` per neural style (every
    strength at once, so each frame goes through the style network once); ``styles`` = weights given;
    ``suite`` = which suite's corruptions (``temporal``: ``STRENGTH/NAME`` of the temporal suite)."""
    strs = _select(strengths, list(C.STRENGTHS), "strength(s)")
    if suite not in SUITES:
        raise BuildError(f"--suite must be one of {', '.join(SUITES)} (got {suite!r})")
    names = _select(corruptions, list(SUITE_NAMES[suite]), f"corruption(s) of the {suite} suite")
    neural = [n for n in names if _is_neural(n)]
    groups = ["clean"] + [f"{s}/{n}" for s in strs for n in names if n not in neural]
    return groups + ([f"styles/{n}" for n in neural] if styles else [])


def group_arguments(group: str, strengths: Sequence[str] | None = None) -> dict[str, Any]:
    """``build()`` keywords of one part: ``clean``, ``STRENGTH/CORRUPTION``, ``styles/NAME`` (with the
    given ``strengths``) or ``index`` (link every complete shard; builds the clean shard if missing)."""
    if group == "clean":
        return {"steps": ("clean",)}
    if group == "index":
        return {"steps": ("clean", "index")}
    head, _, name = group.partition("/")
    if head in C.STRENGTHS and name in C.TEMPORAL:
        return {"steps": ("corrupted",), "corruptions": [name], "strengths": [head], "suite": TEMPORAL_SUITE}
    if head == "styles" and name in C.CORRUPTIONS and C.get(name).kind == "neural":
        return {"steps": ("corrupted",), "corruptions": [name], "strengths": list(strengths) if strengths else None}
    if head in C.STRENGTHS and name in C.CORRUPTIONS and C.get(name).kind != "neural":
        return {"steps": ("corrupted",), "corruptions": [name], "strengths": [head]}
    raise BuildError(f"--group {group!r}: expected clean, index, STRENGTH/CORRUPTION (e.g. high/glass_blur) or "
                     "styles/NAME (e.g. styles/style1)")


@cli_main("davis_c.build", "complete shards are kept; rerun the same command to resume")
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog=prog("davis_c.build", "davis-c-build"),
        description="Build DAVIS-C (corrupted DAVIS-2017 val, or <dataset>-C of another benchmark) into an HDF5 "
                    "store: one shard per (strength, corruption), resumable, byte-identical for any --workers.",
        epilog="Examples:\n  python -m davis_c.build --sample\n"
               "  python -m davis_c.build --root DAVIS --out davis_c.h5 --workers 2\n"
               "  python -m davis_c.build --root DAVIS --corruptions glass_blur --strengths high --videos blackswan\n"
               "  python -m davis_c.build --sample --suite temporal             # the temporal suite, same store\n"
               "  python -m davis_c.build --root DAVIS --out davis_c.h5 --slurm partition=cpu,cpus_per_task=4,timeout_min=240",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("source")
    src.add_argument("--root", type=Path, help="dataset root: a DAVIS-2017 or DAVIS-2016 folder (recognised by its "
                     "ImageSets/), an SA-V split folder, or the root of the benchmark named by --dataset")
    src.add_argument("--sample", action="store_true",
                     help="build from the synthetic sample (generated once in ~/.cache/davis_c or $DAVIS_C_CACHE)")
    src.add_argument("--set", "--split", dest="image_set", default=None,
                     help="image set / split (default: val for DAVIS, the dataset's evaluation split otherwise)")
    src.add_argument("--dataset", default=None, help="benchmark of --root: davis2017 (default), davis2016, "
                     "youtube-vos, mose, lvos, sav; the result is named <dataset>-C (docs/datasets.md)")
    src.add_argument("--resolution", default="480p", help="480p (default) or Full-Resolution")
    src.add_argument("--videos", nargs="+", metavar="NAME", help="only these videos (default: all of the set)")
    what = p.add_argument_group("what to build")
    what.add_argument("--suite", choices=list(SUITES), default=DAVIS_C_SUITE,
                      help="davis-c: the paper's 14 corruptions (default); temporal: the temporal suite ("
                           + ", ".join(C.TEMPORAL) + "), a separate benchmark built into the same store")
    what.add_argument("--corruptions", nargs="+", metavar="NAME",
                      help="default: all of the suite that can be built; choices: " + ", ".join(C.CORRUPTIONS)
                           + " (davis-c); " + ", ".join(C.TEMPORAL) + " (temporal)")
    what.add_argument("--strengths", nargs="+", choices=list(C.STRENGTHS), help="default: low med high")
    what.add_argument("--seed", type=int, default=0, help="base seed of the random corruptions (default 0)")
    what.add_argument("--codec", choices=list(CODECS), default="jpeg",
                      help="frame encoding: jpeg = quality 95 like the official files (default), png = lossless")
    what.add_argument("--style-weights", type=Path, metavar="FILE",
                      help="converted Magenta style network weights (enables style1..style4)")
    what.add_argument("--styles", type=Path, metavar="DIR", help="folder with the style images 1.png..4.png")
    what.add_argument("--device", default=None, help="torch device for the styles (default: cuda if available)")
    run = p.add_argument_group("output and execution")
    run.add_argument("--out", type=Path, help="index file to write (default davis_c.h5, or davis_c_sample.h5 "
                                              "with --sample); shards go to <out stem>_shards/ (<out>.shards/ for a name not ending in .h5)")
    run.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    run.add_argument("--force", action="store_true", help="rebuild shards that are already complete")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--group", metavar="PART", help="build only one part and write no index: clean, "
                     "STRENGTH/CORRUPTION or styles/NAME; 'index' then links every complete shard (what the "
                     "--slurm array tasks run)")
    from common import slurm

    slurm.add_arguments(p, "the build (one task per shard group, then one that writes the index)",
                        "<out stem>_shards/slurm/")
    args = p.parse_args(argv)
    if args.sample and args.root:
        p.error("give either --root or --sample, not both")
    if not args.sample and args.root is None:
        p.error(f"--root DAVIS is required: download DAVIS-2017 (TrainVal, 480p) from {DAVIS_URL}, "
                "or try --sample to build from a small synthetic sample")
    root = sample_root() if args.sample else args.root
    out = args.out or Path("davis_c_sample.h5" if args.sample else "davis_c.h5")
    try:
        if args.slurm is not None or args.slurm_wait or args.slurm_wait_timeout is not None:
            if args.slurm is None or args.group:
                raise BuildError("--slurm-wait goes with --slurm; --group is what each --slurm task runs")
            if not Path(root).is_dir():
                raise BuildError(f"DAVIS root folder not found: {root}")
            groups = shard_groups(args.corruptions, args.strengths, styles=bool(args.style_weights), suite=args.suite)
            return slurm.submit_build(sys.argv[1:] if argv is None else list(argv), groups, shard_dir(out) / "slurm",
                                      slurm.parse_slurm(args.slurm), wait=args.slurm_wait,
                                      wait_timeout_min=args.slurm_wait_timeout)
        part = group_arguments(args.group, args.strengths) if args.group else {}
        kw = {"corruptions": args.corruptions, "strengths": args.strengths, "suite": args.suite} | part
        summary = build(root, out, videos=args.videos,
                        image_set=args.image_set, resolution=args.resolution, workers=args.workers,
                        seed=args.seed, codec=args.codec, force=args.force, style_weights=args.style_weights,
                        styles_dir=args.styles, device=args.device, progress=not args.quiet,
                        dataset=args.dataset, **kw)
    except (BuildError, DavisError, StoreError, _crf.FfmpegUnavailable, slurm.SlurmError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if summary.get("incomplete") else 0


if __name__ == "__main__":
    sys.exit(main())
