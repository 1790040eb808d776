"""Progress moves in frames: common.progress (ETA with a fake clock, relay from processes) and the build's
bar (one update per corrupted frame, every frame-variant counted once, with --workers 1 and 2)."""
from __future__ import annotations

import multiprocessing

import pytest

from davis_c import build as B
from common.progress import Progress, Relay

QUIET = {"progress": False, "log": lambda m: None}


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_eta_is_the_mean_rate_since_the_start():
    clock = FakeClock()
    bar = Progress(100, "x", "frame", enabled=False, clock=clock)
    assert bar.eta() is None  # nothing done yet: no guess
    clock.t += 10
    bar.update(20)               # 20 frames in 10 s: 80 left at 2 frames/s
    assert bar.eta() == pytest.approx(40.0)
    clock.t += 50                # a slow stretch (e.g. cartoon): 10 frames in 50 s
    bar.update(10)
    assert bar.eta() == pytest.approx(60 / 30 * 70)
    bar.update(0)                # no-op updates are not counted
    assert bar.updates == 2 and bar.done == 30
    bar.update(70)
    assert bar.eta() == 0.0
    bar.close()


def _relay_worker(queue, n):
    Relay.install(queue)
    for _ in range(n):
        Relay.tick(2)
    Relay.tick(0)  # ignored


def test_relay_brings_counts_from_another_process():
    ctx = multiprocessing.get_context("spawn")
    bar = Progress(50, "x", "frame", enabled=False)
    relay = Relay(bar, ctx)
    p = ctx.Process(target=_relay_worker, args=(relay.queue, 25))
    p.start()
    p.join(60)
    relay.close()
    assert p.exitcode == 0 and bar.done == 50 and bar.updates == 25
    Relay.install(None)
    Relay.tick(3)  # no queue installed: nothing happens


class Recorder(Progress):
    """The build's bar, recording every update."""

    instances: list["Recorder"] = []

    def __init__(self, total, desc, unit, **kw):
        kw["enabled"] = False
        super().__init__(total, desc, unit, **kw)
        self.steps: list[int] = []
        Recorder.instances.append(self)

    def update(self, n=1):
        if n > 0:
            self.steps.append(int(n))
        super().update(n)


@pytest.mark.parametrize("workers", [1, 2])
def test_build_bar_counts_every_frame_variant(tiny_davis_sample, tmp_path, monkeypatch, workers):
    monkeypatch.setattr(B, "Progress", Recorder)
    Recorder.instances.clear()
    corrs = ["contrast", "cartoon", "glass_blur", "motion_blur"]
    s = B.build(tiny_davis_sample, tmp_path / "x.h5", corruptions=corrs, strengths=["low", "high"],
                workers=workers, **QUIET)
    (bar,) = Recorder.instances
    frames = 2 * 8  # tiny sample: 2 videos x 8 frames
    assert bar.total == s["frame_variants"] == frames * len(corrs) * 2
    assert bar.done == bar.total
    # image corruptions move the bar after every frame; motion blur (temporal) once per video
    image_variants = 3 * 2
    assert bar.steps.count(1) == frames * image_variants
    assert max(bar.steps) == 8 and len(bar.steps) == frames * image_variants + 2 * 2


def test_real_frame_build_moves_in_small_steps(shared, tmp_path, monkeypatch):
    """A real 854x480 video (car-shadow, 40 frames): an image corruption moves the bar after every frame,
    crf while each of its three ffmpeg steps runs (steps of at most a third of the video), motion blur once
    per video; every frame-variant is counted once."""
    monkeypatch.setattr(B, "Progress", Recorder)
    Recorder.instances.clear()
    root = shared / "real_davis16"
    s = B.build(root, tmp_path / "x.h5", corruptions=["pixelate", "crf_compression", "motion_blur"],
                strengths=["low"], videos=["car-shadow"], dataset="davis2016", **QUIET)
    (bar,) = Recorder.instances
    n = 40
    assert bar.total == s["frame_variants"] == 3 * n and bar.done == bar.total
    assert bar.steps.count(n) == 1                      # motion blur: the whole video at once
    crf_steps = [k for k in bar.steps if k not in (1, n)]
    crf_ones = bar.steps.count(1) - n                   # pixelate moves by 1 per frame; crf may too
    assert crf_ones >= 0 and sum(crf_steps) + crf_ones == n  # crf's ticks add up to the video
    assert len(crf_steps) + crf_ones >= 3 and max(crf_steps, default=1) <= -(-n // 3)


def test_failed_build_leaves_no_empty_shard_folder(tiny_davis_sample, tmp_path):
    import shutil

    root = tmp_path / "DAVIS"
    shutil.copytree(tiny_davis_sample, root)
    next((root / "Annotations" / "480p").iterdir()).joinpath("00003.png").unlink()
    with pytest.raises(Exception, match="Annotations"):
        B.build(root, tmp_path / "davis_c.h5", corruptions=["contrast"], **QUIET)
    assert not (tmp_path / "davis_c_shards").exists()
    # an existing folder (complete shards of an earlier build) is never removed
    (tmp_path / "davis_c_shards").mkdir()
    with pytest.raises(Exception, match="Annotations"):
        B.build(root, tmp_path / "davis_c.h5", corruptions=["contrast"], **QUIET)
    assert (tmp_path / "davis_c_shards").is_dir()


def test_progress_kwargs_only_for_functions_that_take_it():
    from common.progress import progress_kwargs

    def with_bar(frames, mask, *, top_k=20, progress=False):
        pass

    def without(frames, mask, *, top_k=20):
        pass

    assert progress_kwargs(with_bar, True) == {"progress": True}
    assert progress_kwargs(with_bar, False) == {}
    assert progress_kwargs(without, True) == {}
    assert progress_kwargs(with_bar, True, {"progress": False}) == {}  # the caller's own setting wins


def test_harness_unit_shows_the_models_frame_bar(monkeypatch):
    """In-process units ask the model for its frame bar (and models.ttt.adapt for its iteration bar)."""
    import numpy as np

    import models.ttt as ttt
    from harness.executor import RunSetup, UnitRunner

    class Model:
        def __init__(self):
            self.calls = []

        def segment(self, frames, mask, *, progress=False):
            self.calls.append(progress)
            probs = np.zeros((2, *frames.shape[:3]), np.float32)
            probs[1] = mask > 0
            return probs

    seen = {}

    def fake_adapt(vos, frames, mask, *, seed, progress=False, **kw):
        seen["progress"] = progress
        return vos

    monkeypatch.setattr(ttt, "adapt", fake_adapt)
    frames = np.zeros((4, 16, 24, 3), np.uint8)
    mask = np.zeros((16, 24), np.uint8)
    mask[4:9, 5:12] = 1
    for ttt_params in (None, {"kind": "mcc"}):
        setup = RunSetup(method="m", config={"resolution": None, "segment": {}}, ttt=ttt_params, checkpoint=None,
                         random_init=False, device="cpu", source={}, out="unused")
        model = Model()
        runner = UnitRunner(setup, vos=model, source=object())
        runner.predict(frames, mask, seed=1)          # default (worker processes): no nested bars
        runner.progress = True
        labels, *_ = runner.predict(frames, mask, seed=1)
        assert model.calls == [False, True] and labels.shape == (4, 16, 24)
    assert seen["progress"] is True


def test_stcn_segment_bar_counts_frames(monkeypatch):
    """STCN's frame bar moves once per frame (counted through tqdm.update)."""
    import numpy as np
    import tqdm as tqdm_mod

    from models import golden_init
    from models.stcn import STCN

    counts = []
    real_update = tqdm_mod.tqdm.update

    def update(self, n=1):
        if self.desc == "stcn":
            counts.append(n)
        return real_update(self, n)

    monkeypatch.setattr(tqdm_mod.tqdm, "update", update)
    net = golden_init(STCN(), seed=0, s=1.0).eval()
    frames = np.random.default_rng(0).integers(0, 256, (3, 32, 48, 3), dtype=np.uint8)
    mask = np.zeros((32, 48), np.uint8)
    mask[8:20, 10:30] = 1
    net.segment(frames, mask, progress=True)
    assert counts == [1, 1, 1]
