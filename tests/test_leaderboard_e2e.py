"""End to end: ``harness.run`` scores methods on the tiny synthetic sample (clean + one corrupted
variant, written as a DAVIS-C folder tree) and the leaderboard built from those files equals the
per-video numbers aggregated by hand.

The default test plugs two cheap stand-in models into the real harness (seconds); the slow one runs
random-init STCN and STCN+tt-MCC with a tiny TTT budget (minutes on a shared CPU).
"""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from leaderboard.build import main as build_main


class _CopyVOS:
    """Stand-in VOS model: the first mask on every frame, optionally shifted (a different 'method')."""

    def __init__(self, shift: int) -> None:
        self.shift = shift

    def segment(self, frames, first_mask, **kw):
        ids = [int(v) for v in np.unique(first_mask) if v != 0]
        mask = np.roll(first_mask, self.shift, axis=1)
        onehot = np.stack([mask == 0] + [mask == i for i in ids]).astype(np.float32)
        return np.repeat(onehot[:, None], len(frames), axis=1)


def _torch_module(shift: int):
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Linear(1, 1)  # something for golden_init to fill
            self.vos = _CopyVOS(shift)

        def segment(self, frames, first_mask, **kw):
            return self.vos.segment(frames, first_mask, **kw)

    return Wrapped().eval()


def load_copy(checkpoint=None, device=None, **config):
    return _torch_module(0)


def load_copy_shift(checkpoint=None, device=None, **config):
    return _torch_module(3)


def _contrast_tree(root: Path, davis: Path, variant: str = "low/contrast") -> Path:
    """A DAVIS-C-style folder tree: the sample's frames with their contrast reduced (no annotations)."""
    for vdir in sorted((davis / "JPEGImages" / "480p").iterdir()):
        dst = root / variant / vdir.name
        dst.mkdir(parents=True)
        for jpg in sorted(vdir.glob("*.jpg")):
            x = np.asarray(Image.open(jpg), dtype=np.float64)
            y = np.round((x - x.mean()) * 0.3 + x.mean()).clip(0, 255)
            Image.fromarray(y.astype(np.uint8)).save(dst / jpg.name, quality=95)
    return root


def _units(out: Path, method: str) -> dict[tuple[str, str, int], dict]:
    recs = {}
    for path in (out / method).rglob("seed*.json"):
        rec = json.loads(path.read_text())
        recs[(rec["variant"], rec["video"], rec["seed"])] = rec
    return recs


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.ids |= {v for k, v in attrs if k == "id"}


def _check_leaderboard(results: Path, out: Path, base_method: str, ttt_method: str, seeds: list[int]) -> None:
    """Build the leaderboard and compare it with the unit files aggregated by hand."""
    assert build_main(["--results", str(results), "--out", str(out)]) == 0
    lb = pd.read_csv(out / "leaderboard.csv").set_index(["method", "variant"])
    pv = pd.read_csv(out / "per_video.csv").set_index(["method", "variant", "video"])
    base, ttt = _units(results, base_method), _units(results, ttt_method)
    videos = sorted({v for _, v, _ in base})
    assert {v for v, _, _ in base} == {"clean", "low/contrast"} and len(videos) == 2
    for method, recs in ((base_method, base), (ttt_method, ttt)):
        for variant in ("clean", "low/contrast"):
            per_seed, video_means = [], []
            for seed in seeds:
                units = [recs[(variant, v, seed)] for v in videos]
                assert all(r["status"] == "ok" and r["random_init"] for r in units)
                objs = [o for r in units for o in r["objects"]]
                per_seed.append((np.mean([o["J"] for o in objs]) + np.mean([o["F"] for o in objs])) / 2)
                video_means.append(np.mean([r["JF"] for r in units]))
            row = lb.loc[(method, variant)]
            assert row.status == "ok" and bool(row.random_init)
            assert row.JF == pytest.approx(np.mean(per_seed), abs=1e-9)
            assert row.JF_video == pytest.approx(np.mean(video_means), abs=1e-9)
            assert row.n_objects == len(objs) and row.n_videos == 2
    for variant in ("clean", "low/contrast"):
        for video in videos:
            after = np.mean([ttt[(variant, video, s)]["JF"] for s in seeds])
            before = np.mean([base[(variant, video, s)]["JF"] for s in seeds])
            row = pv.loc[(ttt_method, variant, video)]
            assert row.JF == pytest.approx(after, abs=1e-9)
            assert row.ttt_gain == pytest.approx(after - before, abs=1e-9)
    parser = _Ids()
    parser.feed((out / "index.html").read_text(encoding="utf-8"))
    assert {"random-init-warning", "summary", "leaderboard", "missing"} <= parser.ids
    assert (out / "plots" / "per_frame.png").is_file() and (out / "plots" / "jf_vs_strength.svg").is_file()


def test_leaderboard_from_harness_run_with_stand_in_models(tiny_davis_sample, tmp_path):
    from harness.cli import main as run_main

    tree = _contrast_tree(tmp_path / "DAVIS-C", tiny_davis_sample)
    out = tmp_path / "results"
    for name, loader in (("copy", "load_copy"), ("copy+shift", "load_copy_shift")):
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump({"description": f"stand-in {name}", "model": f"test_leaderboard_e2e:{loader}",
                                       "checkpoint": "none.pth", "segment": {}, "ttt": None, "resolution": None}))
        assert run_main(["--config", str(cfg), "--data", str(tree), "--annotations", str(tiny_davis_sample),
                         "--out", str(out), "--random-init", "--seeds", "1", "2", "--no-progress",
                         "--allow-plugin"]) == 0  # the stand-in models are plugins
    _check_leaderboard(out, tmp_path / "lb", "copy", "copy+shift", seeds=[1, 2])


@pytest.mark.slow
def test_leaderboard_from_harness_run_with_stcn_and_tt_mcc(tiny_davis_sample, tmp_path):
    from harness.cli import main as run_main

    tree = _contrast_tree(tmp_path / "DAVIS-C", tiny_davis_sample)
    out = tmp_path / "results"
    common = ["--data", str(tree), "--annotations", str(tiny_davis_sample), "--out", str(out), "--random-init",
              "--seeds", "1", "--set", "resolution=null", "--no-progress"]
    assert run_main(["--method", "stcn", *common]) == 0
    assert run_main(["--method", "stcn+mcc", *common, "--set", "ttt_params.iterations=1",
                     "--set", "ttt_params.rounds=1", "--set", "ttt_params.resolution=null"]) == 0
    _check_leaderboard(out, tmp_path / "lb", "stcn", "stcn+mcc", seeds=[1])
