"""The temporal suite in the store: `davis_c.build --suite temporal`, what it stores (kept frames, events,
shake's annotations), byte determinism (seed, --workers 1 vs 2) and the paper's 14 x 3 bytes unchanged."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import davis_c
from common.vocabulary import TEMPORAL_CORRUPTIONS
from davis_c import build as B
from davis_c import corruptions as C
from davis_c.store import derive_seed

QUIET = {"progress": False, "log": lambda m: None}
GOLDEN = Path(__file__).parent / "data" / "temporal_paper_bytes" / "paper_build.json"
PAPER = ["gaussian_noise", "contrast", "pixelate", "motion_blur"]


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.h5"))}


@pytest.fixture(scope="module")
def paper_store(tiny_davis_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("paper") / "davis_c.h5"
    B.build(tiny_davis_sample, out, corruptions=PAPER, workers=1, **QUIET)
    return out


@pytest.fixture(scope="module")
def both_store(paper_store, tiny_davis_sample, tmp_path_factory):
    """The paper store, copied, with the temporal suite built into it."""
    folder = tmp_path_factory.mktemp("both")
    shutil.copytree(paper_store.parent, folder, dirs_exist_ok=True)
    out = folder / paper_store.name
    summary = B.build(tiny_davis_sample, out, suite="temporal", workers=1, **QUIET)
    assert summary["built"] == [f"{s}/{n}" for s in ("low", "med", "high") for n in TEMPORAL_CORRUPTIONS]
    return out


def test_paper_bytes_match_the_build_before_the_suite_existed(paper_store):
    import cv2
    import numba
    import PIL

    want = json.loads(GOLDEN.read_text())
    here = {"libraries": {"numpy": np.__version__, "opencv": cv2.__version__, "numba": numba.__version__,
                          "pillow": PIL.__version__}, "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version}
    if any(want[k] != v for k, v in here.items()):
        pytest.skip(f"golden made with {[want[k] for k in here]}, here {list(here.values())}: other bytes")
    assert want["corruptions"] == PAPER
    assert _hashes(paper_store.parent) == want["files"]


def test_temporal_suite_leaves_the_paper_shards_alone(paper_store, both_store):
    before, after = _hashes(paper_store.parent), _hashes(both_store.parent)
    shards = {k: v for k, v in before.items() if k != paper_store.name}
    assert {k: after[k] for k in shards} == shards  # clean + 12 paper shards: byte-identical
    assert len(after) == len(before) + 3 * len(TEMPORAL_CORRUPTIONS)
    with davis_c.open(paper_store) as a, davis_c.open(both_store) as b:
        paper = [v for v in a.variants]
        assert {v: b.attrs["shard_sha256"][v] for v in paper} == a.attrs["shard_sha256"]
        assert b.corruptions == PAPER + list(TEMPORAL_CORRUPTIONS)
        assert "freeze" not in a.corruptions


def test_plain_build_never_builds_the_suite(tiny_davis_sample, tmp_path):
    with pytest.raises(B.BuildError, match="unknown corruption"):
        B.build(tiny_davis_sample, tmp_path / "x.h5", corruptions=["freeze"], **QUIET)
    with pytest.raises(B.BuildError, match="temporal suite"):
        B.build(tiny_davis_sample, tmp_path / "x.h5", corruptions=["contrast"], suite="temporal", **QUIET)
    with pytest.raises(B.BuildError, match="--suite"):
        B.build(tiny_davis_sample, tmp_path / "x.h5", suite="nope", **QUIET)
    assert B.shard_groups(["freeze"], ["low"], suite="temporal") == ["clean", "low/freeze"]
    assert B.group_arguments("high/shake") == {"steps": ("corrupted",), "corruptions": ["shake"],
                                               "strengths": ["high"], "suite": "temporal"}


def test_stored_variants_are_the_pure_functions(both_store):
    with davis_c.open(both_store) as st:
        key = st.attrs["seed"]
        for video in st.videos:
            clean = st.clean(video)
            for s, sev in C.STRENGTHS.items():
                for n in TEMPORAL_CORRUPTIONS:
                    res = C.corrupt_temporal(clean.frames, n, sev, seed=derive_seed(key, n, s, video),
                                             masks=clean.masks)
                    vid = st[s, n, video]
                    kept = list(res.kept) if res.kept is not None else list(range(len(clean)))
                    assert vid.frame_names == [clean.frame_names[i] for i in kept]
                    want_masks = res.masks if res.masks is not None else clean.masks[kept]
                    assert np.array_equal(vid.masks, want_masks), (s, n, video)
                    assert vid.events == res.events
                    assert st.temporal(s, n, video)["schedule"] == json.loads(json.dumps(res.schedule))
                    # the frames are the function's output, JPEG-encoded like every DAVIS-C frame
                    want = [davis_c.store.encode_frame(f, "jpeg") for f in res.frames]
                    assert st.images(s, n, video) == want
                    attrs = st.shard_attrs(s, n)
                    assert attrs["suite"] == "temporal" and attrs["parameters"] == C.TEMPORAL[n].parameters(sev)
            assert st["low/contrast", video].events is None


def test_shake_ground_truth_and_stride_frames_stored(both_store):
    with davis_c.open(both_store) as st:
        v = st.videos[0]
        shaken = st["high", "shake", v]
        clean = st.clean(v)
        assert (shaken.masks == 255).any() and not (clean.masks == 255).any()
        assert np.array_equal(shaken.masks[0], clean.masks[0])  # the given frame is not moved
        stride = st["low", "stride", v]
        assert stride.frame_names == clean.frame_names[::2] and len(stride) == len(clean) // 2


def test_workers_1_and_2_byte_identical_and_seeded(tiny_davis_sample, both_store, tmp_path):
    out = tmp_path / "w2" / "davis_c.h5"
    B.build(tiny_davis_sample, out, corruptions=PAPER, workers=1, **QUIET)
    B.build(tiny_davis_sample, out, suite="temporal", workers=2, **QUIET)
    assert _hashes(out.parent) == _hashes(both_store.parent)
    other = tmp_path / "seed" / "davis_c.h5"
    B.build(tiny_davis_sample, other, suite="temporal", corruptions=["freeze", "stride"], strengths=["high"],
            seed=1, **QUIET)
    a, b = _hashes(both_store.parent), _hashes(other.parent)
    assert a["davis_c_shards/high__freeze.h5"] != b["davis_c_shards/high__freeze.h5"]


def test_cli_suite_temporal(tiny_davis_sample, tmp_path):
    out = tmp_path / "cli.h5"
    rc = B.main(["--root", str(tiny_davis_sample), "--out", str(out), "--suite", "temporal", "--corruptions",
                 "shake", "--strengths", "low", "--quiet"])
    assert rc == 0
    with davis_c.open(out) as st:
        assert st.variants == ["clean", "low/shake"]


def test_verify_export_show_handle_the_suite(both_store, tmp_path):
    from davis_c.export import export
    from davis_c.show import grid
    from davis_c.verify import verify_store as verify

    rep = verify(both_store, progress=False)
    assert rep.problems == []
    with davis_c.open(both_store) as st:
        v = st.videos[0]
        n = len(st.frame_names(v))
        kept = st.variant_frame_names("high", "stride", v)
        assert len(kept) == len(st.images("high", "stride", v)) < n
        # every stored frame counted once: clean + paper shards have n frames a video, stride fewer
        want = sum(len(st.variant_frame_names(*var.split("/"), vid)) if var != "clean" else n
                   for var in st.variants for vid in st.videos)
        assert rep.frames == want
        img = grid(st, v, frame=n - 1, tile_width=56, zoom=0)
        assert img.shape[0] > 0
    count = export(both_store, tmp_path / "out", corruptions=["stride"], strengths=["high"], progress=False)
    assert sorted(p.stem for p in (tmp_path / "out" / "high" / "stride" / v).iterdir()) == kept
    assert count == len(kept) * 2


def test_folder_tree_refuses_shake(tiny_davis_sample, tmp_path):
    from harness.data import DataError, FolderSource

    (tmp_path / "tree" / "low" / "shake" / "synth-000").mkdir(parents=True)
    src = FolderSource(tmp_path / "tree", tiny_davis_sample)
    with pytest.raises(DataError, match="shake moves the ground truth"):
        src.load("low/shake", "synth-000")


def test_packet_loss_records_its_ffmpeg_and_refuses_another(both_store, tiny_davis_sample, tmp_path, monkeypatch):
    from davis_c.corruptions import crf, packet_loss

    ident = crf.ffmpeg_identity()
    with davis_c.open(both_store) as st:
        attrs = st.shard_attrs("med", "packet_loss")
        assert attrs["ffmpeg_sha256"] == ident["sha256"] and attrs["ffmpeg"] == ident["version"]
        assert attrs["packet_loss_pipeline"] == packet_loss.pipeline_digest()
        assert "ffmpeg_sha256" not in st.shard_attrs("med", "freeze")
    out = tmp_path / "pl" / "davis_c.h5"
    B.build(tiny_davis_sample, out, suite="temporal", corruptions=["packet_loss"], strengths=["low"], **QUIET)
    monkeypatch.setattr(B._crf, "ffmpeg_identity", lambda: {**ident, "sha256": "0" * 64})
    with pytest.raises(B.BuildError, match="another ffmpeg"):
        B.build(tiny_davis_sample, out, suite="temporal", corruptions=["packet_loss"], strengths=["low"], **QUIET)

    def unavailable():
        raise crf.FfmpegUnavailable("no ffmpeg here")

    monkeypatch.setattr(B._crf, "ffmpeg_identity", unavailable)
    s = B.build(tiny_davis_sample, tmp_path / "none" / "davis_c.h5", suite="temporal",
                corruptions=["packet_loss", "freeze"], strengths=["low"], **QUIET)
    assert s["built"] == ["clean", "low/freeze"] and "packet_loss" in s["skipped"]
