"""Harness mechanics with a tiny fake model: registry, config merging, data sources, units, sharding,
atomic results, resume, failure recording and retry, workers, and the errors raised before any work.

The fake model (``test_harness:load_fake``, plugged in through the method's ``model`` setting) copies
the first mask to every frame, so these tests exercise the harness, not a network.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from harness import methods
from common.vocabulary import VariantError, parse_variant
from harness.data import DataError, open_source, select_variants, select_videos
from harness.resolution import model_size, probs_to_labels, resize_mask
from harness.results import (FILE_MODE, RunMismatch, read_unit, remove_stale_temps, write_json_atomic, write_run_json)
from harness.cli import main
from harness.units import Unit, make_units, parse_shard, pending_units, shard_units


# ----------------------------------------------------------------------------------------- fake model
class FakeVOS(nn.Module):
    """Copies the first-frame mask to every frame; fails on chosen calls (env HARNESS_FAKE_FAIL_CALLS)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(2, 2)  # something for golden_init and checkpoints to fill
        self.calls = 0

    def segment(self, frames, first_mask, **kw):
        self.calls += 1
        fail = os.environ.get("HARNESS_FAKE_FAIL_CALLS", "")
        if str(self.calls) in fail.split(","):
            raise RuntimeError("simulated CUDA out of memory")
        assert frames.dtype == np.uint8 and frames.shape[1:3] == first_mask.shape
        ids = [int(v) for v in np.unique(first_mask) if v != 0]
        onehot = np.stack([first_mask == 0] + [first_mask == i for i in ids]).astype(np.float32)
        return np.repeat(onehot[:, None], len(frames), axis=1)


def load_fake(checkpoint=None, device=None, **config):
    from models.checkpoint import load_strict, read_state_dict

    model = FakeVOS()
    if checkpoint is not None:
        load_strict(model, read_state_dict(checkpoint), str(checkpoint))
    return model.to(device or "cpu").eval()


FAKE_METHOD = {"description": "fake: first mask everywhere", "model": "test_harness:load_fake",
               "checkpoint": "fake.pth", "download": "nowhere (test)", "segment": {}, "ttt": None,
               "resolution": None}


@pytest.fixture()
def fake_cfg(tmp_path: Path) -> Path:
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump(FAKE_METHOD))
    return path


def _run(*argv) -> int:
    # the fake model is a 'module:function' plugin named in a --config file: allowed explicitly
    return main(["--no-progress", "--allow-plugin", *map(str, argv)])


def _scores(out: Path, method: str) -> dict:
    """Unit file -> (status, J, F, JF, per-frame) for comparing runs (timings/memory excluded)."""
    res = {}
    for path in sorted((out / method).rglob("seed*.json")):
        rec = json.loads(path.read_text())
        res[str(path.relative_to(out))] = (rec["status"], rec["J"], rec["F"], rec["JF"], rec["per_frame"],
                                           rec["objects"])
    return res


# ----------------------------------------------------------------------------------------- registry
def test_registry_lists_stcn_presets():
    names = methods.available_methods()
    assert {"stcn", "stcn+mcc", "stcn+ent", "stcn+ae"} <= set(names)
    name, cfg = methods.load_method("stcn+mcc")
    assert name == "stcn+mcc" and cfg["model"] == "stcn" and cfg["ttt"] == "stcn_mcc"
    assert cfg["segment"] == {"top_k": 20, "mem_every": 5, "include_last": False}
    assert cfg["checkpoint"] == "stcn.pth" and cfg["resolution"] == 480 and cfg["random_init_scale"] == 1.0
    assert methods.load_method("stcn")[1]["ttt"] is None
    text = methods.describe_methods()
    assert "stcn+ae" in text and "ttt=stcn_ent" in text


def test_set_overrides_are_dotted_and_yaml_typed(tmp_path):
    _, cfg = methods.load_method("stcn+mcc", overrides=["segment.top_k=30", "ttt_params.iterations=2",
                                                         "ttt_params.lr=1e-5", "resolution=null",
                                                         "load.single_object=true", "description=a b=c"])
    assert cfg["segment"] == {"top_k": 30, "mem_every": 5, "include_last": False}
    assert cfg["ttt_params"] == {"iterations": 2, "lr": 1e-5}
    assert cfg["resolution"] is None and cfg["load"] == {"single_object": True}
    assert cfg["description"] == "a b=c"
    # a bare model option goes to the section of the preset that has it
    _, cfg = methods.load_method("stcn", overrides=["top_k=3"])
    assert cfg["segment"]["top_k"] == 3 and "top_k" not in cfg
    _, cfg = methods.load_method("labelprop", overrides=["encoder=resnet18", "k=5", "temperature=0.05",
                                                         "checkpoint=crw.pth"])
    assert cfg["load"]["encoder"] == "resnet18" and cfg["checkpoint"] == "crw.pth"
    assert cfg["segment"]["k"] == 5 and cfg["segment"]["temperature"] == 0.05
    with pytest.raises(methods.MethodError, match="neither load nor segment"):
        methods.load_method("stcn", overrides=["nonsense=3"])
    with pytest.raises(methods.MethodError, match="unknown setting"):
        methods.load_method("stcn", config_file=None, overrides=["nonsense.x=3"])
    with pytest.raises(methods.MethodError, match="key=value"):
        methods.load_method("stcn", overrides=["segment.top_k"])
    with pytest.raises(methods.MethodError, match="not a mapping"):
        methods.load_method("stcn", overrides=["resolution.x=1"])
    with pytest.raises(methods.MethodError, match="resolution"):
        methods.load_method("stcn", overrides=["resolution=-3"])
    with pytest.raises(methods.MethodError, match="unknown method 'nope'"):
        methods.load_method("nope")


def test_config_file_merges_over_preset_or_defines_a_method(tmp_path, fake_cfg):
    extra = tmp_path / "mine.yaml"
    extra.write_text("segment: {top_k: 50}\nttt: stcn_ent\n")
    name, cfg = methods.load_method("stcn+mcc", config_file=extra, overrides=["segment.mem_every=3"])
    assert name == "stcn+mcc" and cfg["ttt"] == "stcn_ent"
    assert cfg["segment"] == {"top_k": 50, "mem_every": 3, "include_last": False}
    name, cfg = methods.load_method(config_file=fake_cfg)
    assert name == "fake" and cfg["model"] == "test_harness:load_fake" and cfg["load"] == {}
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(methods.MethodError, match="mapping"):
        methods.load_method(config_file=bad)


def test_list_cli(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("stcn", "stcn+mcc", "stcn+ent", "stcn+ae"):
        assert f"\n{name} " in "\n" + out


# ----------------------------------------------------------------------------------------- units
def test_units_shards_are_disjoint_covering_and_deterministic():
    variants = ["clean", "low/contrast", "high/contrast"]
    units = make_units("m", variants, ["a", "b", "c"], [1, 5, 10])
    assert len(units) == 27 and units[0] == Unit("m", "clean", "a", 1) and units[1] == Unit("m", "clean", "a", 5)
    for n in (1, 2, 4, 27, 30):
        parts = [shard_units(units, i, n) for i in range(n)]
        flat = [u for p in parts for u in p]
        assert sorted(map(str, flat)) == sorted(map(str, units)) and len(flat) == len(set(flat))
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
        assert parts == [shard_units(make_units("m", variants, ["a", "b", "c"], [1, 5, 10]), i, n) for i in range(n)]
    assert parse_shard("1/4") == (1, 4) and parse_shard(None) == (0, 1)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)
    with pytest.raises(ValueError, match="twice"):
        make_units("m", ["clean"], ["a"], [1, 1])
    assert Unit("m", "high/contrast", "a", 5).path("R") == Path("R/m/high/contrast/a/seed5.json")


def test_atomic_writes_and_stale_temp_cleanup(tmp_path):
    path = tmp_path / "m" / "clean" / "v" / "seed1.json"
    write_json_atomic(path, {"x": float("nan"), "y": [1.5]})
    assert json.loads(path.read_text()) == {"x": None, "y": [1.5]}
    assert stat.S_IMODE(path.stat().st_mode) == FILE_MODE  # shareable like any file, not mkstemp's 0600
    assert [p.name for p in path.parent.iterdir()] == ["seed1.json"]
    # leftovers of a killed attempt: only this unit's temps are removed
    (path.parent / ".seed1.json.tmp-123.json").write_text("{")
    (path.parent / ".seed1.tmp-456").mkdir()
    (path.parent / ".seed5.json.tmp-789.json").write_text("{")
    remove_stale_temps(path)
    assert sorted(p.name for p in path.parent.iterdir()) == [".seed5.json.tmp-789.json", "seed1.json"]
    # a truncated or foreign file is "not done", never "done"
    assert read_unit(path) is None
    path.write_text('{"schema": "davis-c-unit/1", "status": "ok"')
    assert read_unit(path) is None
    units = [Unit("m", "clean", "v", 1)]
    assert pending_units(units, tmp_path) == (units, 0, 0)


def test_run_json_refuses_mixing_setups(tmp_path):
    info = {"method": "m", "config": {"a": 1}, "random_init": True, "checkpoint_sha256": None, "seeds": [1],
            "created": "t0"}
    write_run_json(tmp_path, "m", info)
    got = write_run_json(tmp_path, "m", {**info, "seeds": [1, 5], "created": "t1"})
    assert got["seeds"] == [1, 5] and got["created"] == "t0"
    with pytest.raises(RunMismatch, match="--name"):
        write_run_json(tmp_path, "m", {**info, "config": {"a": 2}})
    with pytest.raises(RunMismatch, match="random_init"):
        write_run_json(tmp_path, "m", {**info, "random_init": False, "checkpoint_sha256": "ab"})


# ----------------------------------------------------------------------------------------- data
def test_variant_and_video_selection():
    avail = ["clean", "low/glass_blur", "low/contrast", "high/glass_blur", "high/contrast"]
    assert select_variants(avail, None) == avail
    assert select_variants(avail, ["all"]) == avail
    assert select_variants(avail, ["clean"]) == ["clean"]
    assert select_variants(avail, ["high/*"]) == ["high/glass_blur", "high/contrast"]
    assert select_variants(avail, ["*/glass_blur", "clean"]) == ["clean", "low/glass_blur", "high/glass_blur"]
    with pytest.raises(DataError, match="'med/\\*' is not in"):
        select_variants(avail, ["med/*"])
    assert select_videos(["a", "b", "c"], ["c", "a"]) == ["a", "c"]
    with pytest.raises(DataError, match="'z' is not in"):
        select_videos(["a", "b"], ["z"])
    assert parse_variant("clean") == (None, None) and parse_variant("high/contrast") == ("high", "contrast")
    with pytest.raises(VariantError, match="'high': expected 'clean' or '<strength>/<corruption>'"):
        parse_variant("high")


def _folder_tree(root: Path, davis: Path, variants=("low/invert", "high/invert")) -> Path:
    """A DAVIS-C-style folder tree of frames (inverted colours) without annotations."""
    from PIL import Image

    for variant in variants:
        for vdir in sorted((davis / "JPEGImages" / "480p").iterdir()):
            dst = root / variant / vdir.name
            dst.mkdir(parents=True)
            for jpg in sorted(vdir.glob("*.jpg")):
                Image.fromarray(255 - np.asarray(Image.open(jpg))).save(dst / jpg.name, quality=95)
    return root


def test_sources_davis_root_and_folder_tree(tiny_davis_sample, tmp_path):
    with open_source(tiny_davis_sample) as src:
        assert src.variants == ["clean"] and len(src.videos) == 2
        v = src.load("clean", src.videos[0])
        assert v.frames.shape[0] == 8 and v.masks.shape == v.frames.shape[:3]
        with pytest.raises(DataError, match="only holds the 'clean'"):
            src.load("high/invert", src.videos[0])
    tree = _folder_tree(tmp_path / "DAVIS-C", tiny_davis_sample)
    with pytest.raises(DataError, match="--annotations"):
        open_source(tree)
    with open_source(tree, tiny_davis_sample) as src:
        assert src.variants == ["clean", "low/invert", "high/invert"]
        clean, inv = src.load("clean", src.videos[1]), src.load("high/invert", src.videos[1])
        assert np.array_equal(clean.masks, inv.masks) and clean.object_ids == inv.object_ids
        assert np.abs(inv.frames.astype(int) - (255 - clean.frames.astype(int))).mean() < 4
    with pytest.raises(DataError, match="no such file"):
        open_source(tmp_path / "missing")


# ----------------------------------------------------------------------------------------- resolution
def test_resolution_rules():
    assert model_size(480, 854, 480) == (480, 854)
    assert model_size(240, 432, 480) == (480, 864)
    assert model_size(1080, 1920, 480) == (480, 853)
    assert model_size(900, 600, 480) == (720, 480)
    assert model_size(64, 112, None) == (64, 112)
    mask = np.zeros((4, 6), np.uint8)
    mask[:2, :3] = 7
    up = resize_mask(mask, (8, 12))
    assert up.shape == (8, 12) and set(np.unique(up)) == {0, 7} and (up[:4, :6] == 7).all()
    probs = np.zeros((3, 2, 4, 6), np.float32)
    probs[0] = 0.5
    probs[2, 0, :2] = 0.9
    probs[1, 1] = 0.8
    labels = probs_to_labels(probs, (3, 9))
    assert labels.dtype == np.uint8 and labels.shape == (2, 4, 6)
    assert (labels[0, :2] == 9).all() and (labels[0, 2:] == 0).all() and (labels[1] == 3).all()
    assert probs_to_labels(probs, (3, 9), (8, 12)).shape == (2, 8, 12)
    with pytest.raises(ValueError, match="K\\+1"):
        probs_to_labels(probs, (3,))


# ----------------------------------------------------------------------------------------- runs
def test_fake_run_writes_scores_resumes_and_labels_random_init(tiny_davis_sample, fake_cfg, tmp_path, capsys):
    out = tmp_path / "res"
    assert _run("--config", fake_cfg, "--data", tiny_davis_sample, "--random-init", "--out", out,
                "--seeds", 1, 5, "--save-masks") == 0
    text = capsys.readouterr()
    assert "NOT A REAL MODEL" in text.out and "clean" in text.out
    run = json.loads((out / "fake" / "run.json").read_text())
    assert run["random_init"] is True and run["checkpoint_sha256"] is None and run["seeds"] == [1, 5]
    assert run["config"]["model"] == "test_harness:load_fake" and run["toolkit_version"]
    files = sorted((out / "fake" / "clean").rglob("seed*.json"))
    assert len(files) == 4
    rec = json.loads(files[0].read_text())
    for key in ("schema", "method", "variant", "strength", "corruption", "video", "seed", "status", "error",
                "random_init", "objects", "J", "F", "JF", "n_frames", "per_frame", "timing", "peak_memory_mb"):
        assert key in rec, key
    assert rec["status"] == "ok" and rec["random_init"] is True and rec["variant"] == "clean"
    assert rec["strength"] is None and rec["n_frames"] == 8 and rec["peak_memory_mb"] > 0
    assert set(rec["timing"]) == {"ttt_s", "inference_s", "fps", "threads"} and rec["timing"]["ttt_s"] == 0
    assert len(rec["per_frame"]["J"]) == len(rec["objects"]) and len(rec["per_frame"]["J"][0]) == 6
    assert abs(rec["JF"] - (rec["J"] + rec["F"]) / 2) < 1e-12
    masks = sorted((files[0].parent / "seed1").glob("*.png"))
    assert {stat.S_IMODE(p.stat().st_mode) for p in masks} == {FILE_MODE}
    assert [p.stem for p in masks] == [f"{t:05d}" for t in range(8)]
    assert not [p for p in (out / "fake").rglob("*") if ".tmp-" in p.name]
    # rerun: nothing to do, same files untouched
    stamps = {p: p.stat().st_mtime_ns for p in files}
    assert _run("--config", fake_cfg, "--data", tiny_davis_sample, "--random-init", "--out", out,
                "--seeds", 1, 5, "--save-masks") == 0
    assert "0 to run" in capsys.readouterr().err
    assert stamps == {p: p.stat().st_mtime_ns for p in files}


def test_failed_units_are_recorded_and_only_they_are_retried(tiny_davis_sample, fake_cfg, tmp_path, capsys,
                                                             monkeypatch):
    out = tmp_path / "res"
    args = ("--config", fake_cfg, "--data", tiny_davis_sample, "--random-init", "--out", out, "--seeds", 1, 2)
    monkeypatch.setenv("HARNESS_FAKE_FAIL_CALLS", "2")
    assert _run(*args) == 1
    text = capsys.readouterr().out
    assert "1 failed unit" in text and "simulated CUDA out of memory" in text
    recs = {p: json.loads(p.read_text()) for p in (out / "fake").rglob("seed*.json")}
    failed = [p for p, r in recs.items() if r["status"] == "failed"]
    assert len(recs) == 4 and len(failed) == 1
    assert "RuntimeError: simulated CUDA out of memory" == recs[failed[0]]["error"]
    stamps = {p: p.stat().st_mtime_ns for p in recs}
    monkeypatch.delenv("HARNESS_FAKE_FAIL_CALLS")
    assert _run(*args) == 0
    assert "1 to run" in capsys.readouterr().err
    after = {p: p.stat().st_mtime_ns for p in recs}
    assert [p for p in recs if after[p] != stamps[p]] == failed
    assert json.loads(failed[0].read_text())["status"] == "ok"


def test_workers_and_shards_give_the_same_results(tiny_davis_sample, fake_cfg, tmp_path):
    from davis_c import build

    h5 = tmp_path / "tiny_c.h5"
    build.build(tiny_davis_sample, h5, corruptions=["contrast"], strengths=["high"], progress=False,
                log=lambda m: None)
    common = ("--config", fake_cfg, "--data", h5, "--random-init")
    assert _run(*common, "--out", tmp_path / "a") == 0
    assert _run(*common, "--out", tmp_path / "b", "--workers", 2) == 0
    assert _run(*common, "--out", tmp_path / "c", "--shard", "0/3") == 0
    assert _run(*common, "--out", tmp_path / "c", "--shard", "2/3") == 0
    assert _run(*common, "--out", tmp_path / "c", "--shard", "1/3") == 0
    ref = _scores(tmp_path / "a", "fake")
    assert len(ref) == 4 and {k.split("/")[1] for k in ref} == {"clean", "high"}
    assert _scores(tmp_path / "b", "fake") == ref
    assert _scores(tmp_path / "c", "fake") == ref


def test_errors_before_any_work(tiny_davis_sample, fake_cfg, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "res"
    base = ("--config", fake_cfg, "--data", tiny_davis_sample, "--out", out)
    # missing checkpoint: names the download and --random-init
    assert _run(*base) == 2
    err = capsys.readouterr().err
    assert "no checkpoint 'fake.pth'" in err and "nowhere (test)" in err and "--random-init" in err
    assert not out.exists()
    # a checkpoint of another model
    torch.save({"conv.weight": torch.zeros(3, 3, 1, 1)}, tmp_path / "other.pth")
    assert _run(*base, "--checkpoint", tmp_path / "other.pth") == 2
    assert "does not fit model" in capsys.readouterr().err and not out.exists()
    # the right checkpoint, found in ./saves/ by default: run.json records its hash
    (tmp_path / "saves").mkdir()
    torch.save(FakeVOS().state_dict(), tmp_path / "saves" / "fake.pth")
    assert _run(*base, "--videos", "synth-000") == 0
    run = json.loads((out / "fake" / "run.json").read_text())
    assert run["random_init"] is False and len(run["checkpoint_sha256"]) == 64
    capsys.readouterr()
    # different weights into the same folder are refused
    assert _run(*base, "--random-init") == 2
    assert "different setup" in capsys.readouterr().err
    # a variant / video that is not in the data
    assert _run(*base, "--variants", "high/*") == 2
    assert "'high/*' is not in" in capsys.readouterr().err
    assert _run(*base, "--videos", "nope") == 2
    assert "'nope' is not in" in capsys.readouterr().err
    # a video without annotations (DAVIS-C folder tree whose DAVIS root lacks them)
    davis = tmp_path / "DAVIS"
    shutil.copytree(tiny_davis_sample, davis)
    tree = _folder_tree(tmp_path / "DAVIS-C", davis, variants=("low/invert",))
    shutil.rmtree(davis / "Annotations" / "480p" / "synth-001")
    assert _run("--config", fake_cfg, "--data", tree, "--annotations", davis, "--random-init",
                "--out", tmp_path / "res2") == 2
    assert "synth-001" in capsys.readouterr().err and not (tmp_path / "res2").exists()


def test_weight_free_method_runs_without_checkpoint(tiny_davis_sample, fake_cfg, tmp_path, capsys):
    out = tmp_path / "res"
    assert _run("--config", fake_cfg, "--set", "checkpoint=null", "--data", tiny_davis_sample, "--out", out,
                "--videos", "synth-001") == 0
    run = json.loads((out / "fake" / "run.json").read_text())
    assert run["random_init"] is False and run["checkpoint"] is None and run["checkpoint_sha256"] is None
    assert "NOT A REAL MODEL" not in capsys.readouterr().out
    assert json.loads((out / "fake" / "clean" / "synth-001" / "seed1.json").read_text())["random_init"] is False
