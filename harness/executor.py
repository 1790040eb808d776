"""Running units: load the model once per process, then adapt (TTT), segment, score and write each unit.

The harness never knows which model it runs: it calls the builder :mod:`models.registry` gives for the
method's ``model`` setting (a registered name or a ``module:function``), ``models.ttt.adapt`` when the method has a TTT preset, and
``segment`` on the result.  A unit that raises (out of memory on one long video, a corrupt file) is
written as ``status: failed`` with its error and the run goes on; rerunning retries it.  A full or
read-only disk is not a unit failure: it stops the run (every further unit would fail the same way).
Every record names the data it was computed on (``data``, ``data_id``: see ``harness.identity``).
"""
from __future__ import annotations

import os
import random
import resource
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from common.atomic import atomic_dir
from common.cli import is_output_full, with_path
from common.progress import progress_kwargs
from harness.data import Source, open_source
from harness.identity import data_identity, video_annotations_digest
from harness.methods import merge
from harness.recovery import event_names
from harness.protocols import SCORING_SERVER, score, score_video, unit_scores  # the one scoring home
from harness.resolution import model_size, probs_to_labels, resize_frames, resize_mask
from harness.results import remove_stale_temps
from harness.units import RecordError, Unit, UnitIdentity, new_record, write_unit

__all__ = ["RunSetup", "SetupError", "find_checkpoint", "build_model", "resolve_ttt", "UnitRunner",
           "seed_everything", "score_video", "unit_scores"]

CHECKPOINT_ENV = "DAVIS_C_CHECKPOINTS"


class SetupError(ValueError):
    """A problem found before any unit runs (weights, data, selection); the message says what to do."""


@dataclass
class RunSetup:
    """Everything a worker process needs to rebuild the run (picklable)."""

    method: str                      # output folder name
    config: dict                     # resolved method config
    ttt: dict | None                 # resolved TTT parameters (preset + ttt_params), None = no TTT
    checkpoint: str | None           # weights file; None with random_init
    random_init: bool
    device: str
    source: dict                     # open_source(**source)
    out: str
    save_masks: bool = False
    threads: int | None = None       # torch threads per process


# --------------------------------------------------------------------------------------------- weights
def find_checkpoint(config: dict, explicit: str | os.PathLike | None) -> Path | None:
    """The weights file to use: ``--checkpoint``, else the preset's file name looked up as given, in
    ``./saves/`` (where the official repositories put it) and in ``$DAVIS_C_CHECKPOINTS``.

    None for a weight-free method (preset ``checkpoint: null``, e.g. label propagation on pixels).
    """
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise SetupError(f"--checkpoint {path}: file not found")
        return path
    name = config.get("checkpoint")
    if not name:
        return None
    candidates = [Path(name), Path("saves") / name]
    if os.environ.get(CHECKPOINT_ENV):
        candidates.append(Path(os.environ[CHECKPOINT_ENV]) / name)
    for path in candidates:
        if path.is_file():
            return path
    where = ", ".join(str(p) for p in candidates)
    env_note = "" if os.environ.get(CHECKPOINT_ENV) else f" (or a folder named by ${CHECKPOINT_ENV})"
    download = config.get("download") or "the model's official repository"
    raise SetupError(
        f"no checkpoint {name!r} for model {config['model']!r}: looked in {where}{env_note}.\n"
        f"  Download the official weights from {download}\n"
        f"  and pass --checkpoint PATH, or run with --random-init to exercise the pipeline with "
        f"golden-init weights (NOT a real model: its scores mean nothing).")


def _loader(name: str) -> Callable[..., Any]:
    """The builder of model ``name`` from :mod:`models.registry` (a registered name, or ``pkg.mod:function``
    for a custom model)."""
    from models.registry import builder

    try:
        return builder(name)
    except KeyError as exc:
        raise SetupError(exc.args[0]) from None


def build_model(config: dict, checkpoint: str | os.PathLike | None, random_init: bool, device: str):
    """Load the method's model in eval mode, with the checkpoint or with golden-init weights."""
    from common.checkpoint import CheckpointError
    from models.golden_init import golden_init

    load = _loader(config["model"])
    if random_init:
        vos = load(checkpoint=None, device=device, **config["load"])
        golden_init(vos, seed=0, s=float(config["random_init_scale"]))
    elif checkpoint is None:  # weight-free method
        vos = load(checkpoint=None, device=device, **config["load"])
    else:
        try:
            vos = load(checkpoint=str(checkpoint), device=device, **config["load"])
        except CheckpointError as exc:
            raise SetupError(f"checkpoint {checkpoint} does not fit model {config['model']!r} (is it the "
                             f"checkpoint of another model?): {exc}") from exc
    return vos.eval()


def resolve_ttt(config: dict) -> dict | None:
    """The method's TTT parameters: the named ``models.ttt`` preset with ``ttt_params`` on top.

    The TTT samples are taken at the resolution the model sees: a method ``resolution`` replaces the
    preset's unless ``ttt_params`` sets ``resolution`` itself (both are 480 in the official setup).
    """
    if not config.get("ttt"):
        if config.get("ttt_params"):
            raise SetupError("ttt_params given but the method has no TTT preset (ttt: null)")
        return None
    from models import ttt

    try:
        preset = ttt.load_preset(config["ttt"])
    except (KeyError, FileNotFoundError, ValueError) as exc:
        raise SetupError(f"TTT preset {config['ttt']!r}: {exc}") from exc
    for_model = preset.get("model")
    if for_model and ":" not in config["model"] and for_model != config["model"]:
        raise SetupError(f"TTT preset {config['ttt']!r} is for model {for_model!r}, but the method runs "
                         f"{config['model']!r}")
    params = merge(preset, config.get("ttt_params") or {})
    if "resolution" not in (config.get("ttt_params") or {}):
        params["resolution"] = config["resolution"]
    return params


# --------------------------------------------------------------------------------------------- helpers
def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices): each unit is reproducible on its own."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: writing 5 resets the process's peak resident set size (VmHWM)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _peak_mb(device: str) -> float:
    """Peak GPU memory allocated (CUDA) or peak resident memory of this process, in MiB."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024


# --------------------------------------------------------------------------------------------- units
class UnitRunner:
    """Holds the model and the data source of one process and runs units with it."""

    def __init__(self, setup: RunSetup, vos=None, source: Source | None = None) -> None:
        self.setup = setup
        self.vos = vos if vos is not None else build_model(setup.config, setup.checkpoint, setup.random_init,
                                                           setup.device)
        self.source = source if source is not None else open_source(**setup.source)
        #: show the model's own bars (frames of a unit, TTT iterations); only in-process runs set it
        self.progress = False

    def close(self) -> None:
        self.source.close()

    def run(self, unit: Unit) -> dict:
        """Run one unit and write its result file (ok or failed) through :func:`harness.units.write_unit`;
        returns the record."""
        out = self.setup.out
        path = unit.path(out)
        remove_stale_temps(path)
        identity = None
        try:
            record, identity = self._run(unit)
        except (KeyboardInterrupt, SystemExit):
            raise
        except OSError as exc:
            if is_output_full(exc):  # disk full / read-only: every unit would fail; stop the run
                raise with_path(exc, unit.mask_dir(out) if self.setup.save_masks else path) from exc
            record = self._failed(unit, exc)
        except Exception as exc:  # recorded, not fatal: the run goes on with the next unit
            record = self._failed(unit, exc)
        try:
            write_unit(out, unit, record, identity)
        except RecordError as exc:  # e.g. a non-finite score: the unit failed, it is never written as ok
            record = self._failed(unit, exc)
            write_unit(out, unit, record, identity)
        return record

    def _failed(self, unit: Unit, exc: BaseException) -> dict:
        """The record of a unit that raised: status failed, the error and the end of its traceback."""
        if self.setup.device.startswith("cuda"):
            torch.cuda.empty_cache()
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        record = self._base(unit)
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                      traceback="".join(tb[-6:]))
        return record

    def _base(self, unit: Unit) -> dict:
        return new_record(unit, random_init=self.setup.random_init, data_path=self.setup.source.get("data"))

    def predict(self, frames: np.ndarray, first_mask, seed: int):
        """Adapt (if TTT) and segment at the model resolution: ``(labels at the input resolution, ttt_s,
        inference_s, peak MiB, extra timing fields)``; the extra fields are the method's own (e-OSVOS's
        fine-tuning seconds per object).

        ``first_mask``: the first-frame label map, or ``{frame: label map}`` when objects are given on
        later frames (models.inputs contract; TTT then starts from :func:`models.ttt.ttt_anchor`)."""
        setup, device = self.setup, self.setup.device
        h, w = frames.shape[1:3]
        size = model_size(h, w, setup.config["resolution"])
        frames_in = resize_frames(frames, size)
        if isinstance(first_mask, dict):  # void is not an object
            given_in = {int(t): resize_mask(np.where(m == 255, 0, m).astype(np.uint8), size)
                        for t, m in sorted(first_mask.items())}
            object_ids = tuple(sorted({int(k) for m in given_in.values() for k in np.unique(m) if k != 0}))
            first_in = given_in if list(given_in) != [0] else given_in[0]
        else:
            first = np.where(first_mask == 255, 0, first_mask).astype(np.uint8)
            first_in = resize_mask(first, size)
            object_ids = tuple(int(k) for k in np.unique(first_in) if k != 0)  # the objects the model is given
        seed_everything(seed)
        _reset_peak(device)
        vos, ttt_s = self.vos, 0.0
        if setup.ttt is not None:
            from models import ttt

            _sync(device)
            t0 = time.perf_counter()
            params = {**setup.ttt, "seed": seed}
            bars = progress_kwargs(ttt.adapt, self.progress, params)
            if isinstance(first_in, dict):
                anchor, anchor_map = ttt.ttt_anchor(self.vos, frames_in, first_in, setup.config["segment"])
                vos = ttt.adapt(self.vos, frames_in[anchor:], anchor_map, **params, **bars)
            else:
                vos = ttt.adapt(self.vos, frames_in, first_in, **params, **bars)
            _sync(device)
            ttt_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with torch.no_grad():
            probs = vos.segment(frames_in, first_in, **setup.config["segment"],
                                **progress_kwargs(vos.segment, self.progress, setup.config["segment"]))
        _sync(device)
        inference_s = time.perf_counter() - t0
        extra: dict[str, float] = {}
        own = getattr(vos, "last_timing", None) or {}
        if "finetune_s" in own:  # fine-tuning inside segment (e-OSVOS) is the method's adaptation cost
            ttt_s += own["finetune_s"]
            inference_s = max(inference_s - own["finetune_s"], 0.0)
            extra = {"ttt_s_per_object": own["finetune_s_per_object"]}
        labels = probs_to_labels(probs, object_ids, (h, w))
        return labels, ttt_s, inference_s, _peak_mb(device), extra

    def _run(self, unit: Unit) -> tuple[dict, UnitIdentity]:
        data = data_identity(self.source, unit.variant, unit.video)  # what this unit is computed on
        video = self.source.load(unit.variant, unit.video)
        protocol = getattr(self.source, "protocol", "davis2017")
        from harness.correspondence import is_correspondence

        if is_correspondence(protocol):  # JHMDB pose / VIP parts (label propagation)
            return self._run_correspondence(unit, video, data, protocol)
        labels, ttt_s, inference_s, peak, extra = self.predict(video.frames, video.given_masks(), unit.seed)
        scores = score(video, labels, protocol=protocol,
                       scored_locally=getattr(self.source, "scored_locally", True),
                       split=getattr(self.source, "split", None))  # the benchmark's own rules (harness.protocols)
        server = scores.get("scoring") == SCORING_SERVER
        if server:
            scores["submission_frames"] = len(video.required_frames())
        if self.setup.save_masks or server:  # a private benchmark needs the masks it reads
            frames = set(video.required_frames()) if server else None
            self._save_masks(unit, labels, video.frame_names, frames)
        record = self._base(unit)
        record.update(scores)
        if video.events is not None:  # temporal suite: the freeze / burst runs, by frame name (leaderboard recovery)
            record["events"] = event_names(video.events, video.frame_names)
        identity = UnitIdentity(data=data, data_path=self.setup.source.get("data"),
                                annotations_sha256=video_annotations_digest(video))
        n = int(len(video.frames))
        record.update(n_frames=n, timing={"ttt_s": ttt_s, "inference_s": inference_s,
                                          "fps": n / inference_s if inference_s > 0 else None,
                                          "threads": torch.get_num_threads(), **extra},
                      peak_memory_mb=peak)
        return record, identity

    def _run_correspondence(self, unit: Unit, video, data: dict, protocol: str) -> tuple[dict, UnitIdentity]:
        """A unit of harness.correspondence's protocols: the protocol's own input size, settings and metric.
        The identity's annotations digest covers the label maps and, for JHMDB, the joints scored."""
        from harness.correspondence import run_video

        seed_everything(unit.seed)
        _reset_peak(self.setup.device)
        fields, inference_s, prediction = run_video(self.vos, video, protocol,
                                                    self.setup.config.get("propagation"), self.progress)
        if self.setup.save_masks and protocol == "vip-miou":
            self._save_masks(unit, prediction, video.frame_names)
        record = self._base(unit)
        record.update(fields, dataset=video.dataset, split=getattr(self.source, "split", None))
        identity = UnitIdentity(data=data, data_path=self.setup.source.get("data"),
                                annotations_sha256=video_annotations_digest(video))
        n = int(len(video.frames))
        record.update(n_frames=n, timing={"ttt_s": 0.0, "inference_s": inference_s,
                                          "fps": n / inference_s if inference_s > 0 else None,
                                          "threads": torch.get_num_threads()},
                      peak_memory_mb=_peak_mb(self.setup.device))
        return record, identity

    def _save_masks(self, unit: Unit, labels: np.ndarray, frame_names: list[str],
                    frames: Sequence[int] | None = None) -> None:
        """All PNGs (of ``frames``, default every frame) go to a temp folder renamed into place, so a mask
        folder is always complete."""
        from davis_c.masks import write_mask

        with atomic_dir(unit.mask_dir(self.setup.out)) as tmp:
            for t, (name, lab) in enumerate(zip(frame_names, labels)):
                if frames is None or t in frames:
                    write_mask(tmp / f"{name}.png", lab)


# Process-pool plumbing: one UnitRunner per worker process, built by the initializer.
_WORKER: UnitRunner | None = None


def init_worker(setup: RunSetup, parent: int | None = None) -> None:
    global _WORKER
    if parent is not None:  # never outlive the harness (kill -9 of the parent included)
        from common.workers import exit_with_parent

        exit_with_parent(parent)
    if setup.threads:  # share the cores between the workers instead of oversubscribing them
        from common.threads import apply_threads

        apply_threads(setup.threads)
    _WORKER = UnitRunner(setup)


def run_in_worker(unit: Unit) -> dict:
    assert _WORKER is not None, "init_worker was not called"
    return _WORKER.run(unit)
