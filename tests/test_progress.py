"""Progress moves in frames: davis_c.progress (ETA with a fake clock, relay from processes) and the build's
bar (one update per corrupted frame, every frame-variant counted once, with --workers 1 and 2)."""
from __future__ import annotations

import multiprocessing

import pytest

from davis_c import build as B
from davis_c.progress import Progress, Relay

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
