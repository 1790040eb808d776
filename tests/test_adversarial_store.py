"""Adversarial cases for the DAVIS-C store (issue 25 §3, §5, §7): bad stores a careful user can make by hand
(swapped, renamed, edited shard files; stale temporaries; a full disk) and what every entrance must do with
them: open, ``davis_c.verify``, scoring (``harness.data.open_source``), a rebuild's reuse and ``davis_c.export``.
Every case here passed silently (or crashed) before the store verified its links.  The property tests at the
end edit random attributes of a tiny store: none may open as ok."""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from davis_c import build as B
from davis_c import export as E
from davis_c import verify as V
from davis_c.store import FORMAT, StoreError, open_store, shard_dir, shard_path

QUIET = {"progress": False, "log": lambda msg: None}


@pytest.fixture(scope="module")
def tiny_store(tiny_davis_sample, tmp_path_factory) -> Path:
    """clean + high/contrast + high/gaussian_noise of the tiny sample (2 videos x 8 frames); a pristine copy
    source for every case."""
    out = tmp_path_factory.mktemp("adv_store") / "davis_c.h5"
    B.build(tiny_davis_sample, out, corruptions=["contrast", "gaussian_noise"], strengths=["high"], **QUIET)
    return out


def _copy(src: Path, dest: Path) -> Path:
    shutil.copy2(src, dest / src.name)
    shutil.copytree(shard_dir(src), shard_dir(dest / src.name))
    return dest / src.name


def _set_attr(path: Path, group: str | None, key: str, value) -> None:
    with h5py.File(path, "r+") as f:
        (f if group is None else f[group]).attrs[key] = value


def _swap(a: Path, b: Path) -> None:
    tmp = a.with_name("swap.tmp")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


@pytest.fixture
def store(tiny_store, tmp_path) -> Path:
    return _copy(tiny_store, tmp_path)


# ------------------------------------------------------------------------------ swapped shard files
def test_swapped_shards_do_not_open(store):
    _swap(shard_path(store, "high", "contrast"), shard_path(store, "high", "gaussian_noise"))
    with pytest.raises(StoreError, match=r"high__(\w+)\.h5: linked as 'high/\1' but holds 'high/(?!\1)"):
        open_store(store)


def test_swapped_shards_fail_verify(store, capsys):
    _swap(shard_path(store, "high", "contrast"), shard_path(store, "high", "gaussian_noise"))
    report = V.verify_store(store)
    assert not report.ok and len(report.problems) == 2
    assert V.main(["--h5", str(store)]) == 1
    cap = capsys.readouterr()
    err = cap.out + cap.err
    assert "high__contrast.h5: linked as 'high/contrast' but holds 'high/gaussian_noise'" in err
    assert "high__gaussian_noise.h5: linked as 'high/gaussian_noise' but holds 'high/contrast'" in err


def test_swapped_shards_are_not_scored(store):
    from harness.data import DataError, open_source

    _swap(shard_path(store, "high", "contrast"), shard_path(store, "high", "gaussian_noise"))
    with pytest.raises(DataError, match=r"high__\w+\.h5: linked as 'high/\w+' but holds"):
        open_source(store)


def test_swapped_shards_are_not_reused_by_a_rebuild(store, tiny_davis_sample):
    _swap(shard_path(store, "high", "contrast"), shard_path(store, "high", "gaussian_noise"))
    with pytest.raises(B.BuildError, match=r"high__(\w+)\.h5: linked as 'high/\1' but holds .*not reused"):
        B.build(tiny_davis_sample, store, corruptions=["contrast", "gaussian_noise"], strengths=["high"], **QUIET)
    # --force rebuilds them, and the store then opens with each shard in its place
    B.build(tiny_davis_sample, store, corruptions=["contrast", "gaussian_noise"], strengths=["high"], force=True,
            **QUIET)
    with open_store(store) as s:
        assert s.shard_attrs("high", "contrast")["corruption"] == "contrast"


def test_shard_renamed_into_a_missing_variant_is_refused(store):
    gn = shard_path(store, "high", "gaussian_noise")
    gn.unlink()
    shutil.copy2(shard_path(store, "high", "contrast"), gn)
    with pytest.raises(StoreError, match="holds 'high/contrast'"):
        open_store(store)


# ------------------------------------------------------------------------------ edited attributes
def test_edited_frame_names_fail_before_export_writes(store, tmp_path):
    clean = shard_path(store, None, None)
    with h5py.File(clean, "r") as f:
        video = sorted(f.keys())[0]
        names = json.loads(f[video].attrs["frame_names"])
    names[0], names[1] = names[1], names[0]
    _set_attr(clean, video, "frame_names", json.dumps(names))
    out = tmp_path / "exported"
    with pytest.raises(StoreError, match=rf"clean\.h5: shard of 'clean', video\(s\) {video}: the attributes"):
        E.export(store, out, clean=True, progress=False)
    assert not list(out.rglob("*.jpg"))


@pytest.mark.parametrize("key, value", [("seed", 12345), ("source_sha256", "0" * 64), ("n_frames", 7)])
def test_edited_video_attribute_does_not_open(store, key, value):
    path = shard_path(store, "high", "gaussian_noise")
    with h5py.File(path, "r") as f:
        video = sorted(f.keys())[0]
    _set_attr(path, video, key, value)
    with pytest.raises(StoreError, match="high__gaussian_noise.h5: shard of 'high/gaussian_noise', video"):
        open_store(store)


@pytest.mark.parametrize("key, value", [("severity", 3), ("corruption", "gaussian_noise"), ("seed", 1),
                                        ("parameters", "[0.1]"), ("codec", "png")])
def test_edited_shard_attribute_does_not_open(store, key, value):
    _set_attr(shard_path(store, "high", "contrast"), None, key, value)
    with pytest.raises(StoreError, match=r"high__contrast\.h5"):
        open_store(store)


def test_consistently_forged_frame_and_hash_are_caught(store):
    """Replace one frame's bytes *and* its recorded SHA-256 (a frame read now checks out): the video digest
    over the attributes no longer matches."""
    import hashlib

    path = shard_path(store, "high", "contrast")
    with h5py.File(path, "r+") as f:
        video = sorted(f.keys())[0]
        other = f[video]["frames"][1]
        f[video]["frames"][0] = other
        hashes = json.loads(f[video].attrs["frame_sha256"])
        hashes[0] = hashlib.sha256(other.tobytes()).hexdigest()
        f[video].attrs["frame_sha256"] = json.dumps(hashes)
    with pytest.raises(StoreError, match="do not match their digest"):
        open_store(store)


def test_extra_video_group_in_a_shard_is_caught(store):
    path = shard_path(store, "high", "contrast")
    with h5py.File(path, "r+") as f:
        video = sorted(f.keys())[0]
        f.copy(f[video], "intruder")
    with pytest.raises(StoreError, match="high__contrast.h5"):
        open_store(store)


def test_index_video_list_edit_is_caught(store):
    with h5py.File(store, "r") as f:
        videos = json.loads(f.attrs["videos"])
    _set_attr(store, None, "videos", json.dumps(videos[::-1]))
    with pytest.raises(StoreError, match="lists videos"):
        open_store(store)


def test_index_digest_of_a_link_is_checked(store, tiny_davis_sample, tmp_path):
    """A shard of an identical rebuild with another --seed has another build key; one rebuilt with the same
    settings but edited then re-digested is still not the shard the index recorded."""
    with h5py.File(store, "r") as f:
        digests = json.loads(f.attrs["shard_sha256"])
    digests["high/contrast"] = "f" * 64
    _set_attr(store, None, "shard_sha256", json.dumps(digests))
    with pytest.raises(StoreError, match="not the shard the index linked"):
        open_store(store)


def test_old_format_store_gives_a_clear_message(store):
    for path in [store, *shard_dir(store).glob("*.h5")]:
        _set_attr(path, None, "format", "davis-c/1")
    with pytest.raises(StoreError, match=r"format 'davis-c/1', written by an older toolkit .* rerun the same"):
        open_store(store)
    assert FORMAT == "davis-c/2"


def test_identity_names_the_data(tiny_store, store):
    with open_store(tiny_store) as a, open_store(store) as b:
        v = a.videos[0]
        assert a.identity("high/contrast", v) == b.identity("high/contrast", v)
        assert a.identity("high/contrast", v) != a.identity("high/gaussian_noise", v)
        assert a.identity("clean", v) != a.identity("clean", a.videos[1])


# ------------------------------------------------------------------------------ library versions
def test_resumed_build_under_another_opencv_is_refused(store, tiny_davis_sample, monkeypatch):
    real = B.library_versions
    with open_store(store) as s:
        assert s.attrs["libraries"] == real()  # recorded, and part of the build key
    monkeypatch.setattr(B, "library_versions", lambda neural=False: {**real(neural), "opencv": "4.11.0"})
    with pytest.raises(B.BuildError, match=r"differs in: libraries \(opencv [0-9.]+ -> 4\.11\.0\)"):
        B.build(tiny_davis_sample, store, corruptions=["contrast", "gaussian_noise"], strengths=["high"], **QUIET)


# ------------------------------------------------------------------------------ shard folder and lock names
def test_h5_and_hdf5_indexes_never_share_shards(tiny_davis_sample, tmp_path):
    a, b = tmp_path / "X.h5", tmp_path / "X.hdf5"
    assert shard_dir(a) != shard_dir(b) and shard_dir(tmp_path / "X") not in (shard_dir(a), shard_dir(b))
    assert B.lock_path(a) != B.lock_path(b)
    kw = dict(corruptions=["contrast"], strengths=["high"], **QUIET)
    B.build(tiny_davis_sample, a, seed=1, **kw)
    before = {p.name: p.read_bytes() for p in shard_dir(a).glob("*.h5")}
    B.build(tiny_davis_sample, b, seed=2, force=True, **kw)
    assert {p.name: p.read_bytes() for p in shard_dir(a).glob("*.h5")} == before
    with open_store(a) as sa, open_store(b) as sb:
        assert sa.attrs["seed"] == 1 and sb.attrs["seed"] == 2


# ------------------------------------------------------------------------------ export temporaries
def test_export_removes_its_stale_temporaries(store, tmp_path):
    out = tmp_path / "DAVIS-C"
    E.export(store, out, progress=False)
    vdir = next((out / "high" / "contrast").iterdir())
    stale = vdir / ".00000.jpg.tmp-k9x2.tmp"  # what a kill -9 during a write leaves (common.atomic)
    stale.write_bytes(b"partial")
    E.export(store, out, progress=False)
    assert not stale.exists() and not list(out.rglob("*.tmp"))
    assert not (out / ".export.lock").exists()


# ------------------------------------------------------------------------------ full disk on the lock
def test_full_disk_on_the_build_lock_names_the_file_and_leaves_no_lock(tiny_davis_sample, tmp_path, monkeypatch,
                                                                        capsys):
    from common import locks

    real_open = open

    class FullDisk:
        def __init__(self, fh):
            self._fh = fh

        def __getattr__(self, name):
            return getattr(self._fh, name)

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a failed write names no file

    monkeypatch.setattr(locks, "open", lambda *a, **kw: FullDisk(real_open(*a, **kw)), raising=False)
    out = tmp_path / "davis_c.h5"
    code = B.main(["--root", str(tiny_davis_sample), "--out", str(out), "--quiet", "--corruptions", "contrast"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert str(B.lock_path(out)) in err[0] and "no space left on device" in err[0].lower()
    assert not B.lock_path(out).exists()


# ------------------------------------------------------------------------------ property tests
_SHARDS = [(None, None), ("high", "contrast"), ("high", "gaussian_noise")]


def _mutate(value, choice: int):
    """Another value of the same attribute: edited strings, numbers, JSON lists/objects."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, (bool, np.bool_)):
        return not bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value) + 1 + choice
    if isinstance(value, (float, np.floating)):
        return float(value) + 0.5
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and len(parsed) > 1:
            k = choice % len(parsed)
            return json.dumps(parsed[k:] + parsed[:k] if k else parsed[::-1])
        if isinstance(parsed, list):
            return json.dumps(parsed + ["x"])
        if isinstance(parsed, dict) and parsed:
            key = sorted(parsed)[choice % len(parsed)]
            return json.dumps({**parsed, key: "edited"}, sort_keys=True)
        return value + ("_" if choice % 2 else "0")
    return None


def _attr_edits(store: Path) -> list[tuple[int, str | None, str]]:
    out = []
    for i, (s, c) in enumerate(_SHARDS):
        with h5py.File(shard_path(store, s, c), "r") as f:
            out += [(i, None, k) for k in sorted(f.attrs)]
            for v in sorted(f.keys()):
                out += [(i, v, k) for k in sorted(f[v].attrs)]
    return out


def _check_edit_never_opens(tiny_store, data) -> None:
    edits = _attr_edits(tiny_store)
    n_edits = data.draw(st.integers(1, 3), label="edits")
    with tempfile.TemporaryDirectory() as tmp:
        store = _copy(tiny_store, Path(tmp))
        changed = False
        for _ in range(n_edits):
            kind = data.draw(st.sampled_from(["attr", "swap"]), label="kind")
            if kind == "swap":
                i, j = data.draw(st.lists(st.integers(0, 2), min_size=2, max_size=2, unique=True), label="pair")
                _swap(shard_path(store, *_SHARDS[i]), shard_path(store, *_SHARDS[j]))
                changed = True
                continue
            i, group, key = data.draw(st.sampled_from(edits), label="edit")
            path = shard_path(store, *_SHARDS[i])
            with h5py.File(path, "r+") as f:
                obj = f if group is None else f.get(group)
                if obj is None or key not in obj.attrs:  # moved away by an earlier swap
                    continue
                new = _mutate(obj.attrs[key], data.draw(st.integers(0, 5), label="choice"))
                if new is not None and _as_stored(new) != _as_stored(obj.attrs[key]):
                    obj.attrs[key] = new
                    changed = True
        if not changed or _fingerprint(store) == _fingerprint(tiny_store):
            return  # the edits undid each other
        with pytest.raises(StoreError):
            with open_store(store) as s:  # pragma: no cover - reached only when an edit opens as ok
                pytest.fail(f"an edited store opened as ok: {s!r}")
        assert not V.verify_store(store).ok


def _fingerprint(store: Path) -> dict:
    out = {}
    for s, c in _SHARDS:
        with h5py.File(shard_path(store, s, c), "r") as f:
            out.update({(s, c, None, k): _as_stored(v) for k, v in f.attrs.items()})
            for g in f:
                out.update({(s, c, g, k): _as_stored(v) for k, v in f[g].attrs.items()})
    return out


def _as_stored(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_attribute_edits_and_swaps_never_open_as_ok(tiny_store, data):
    _check_edit_never_opens(tiny_store, data)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_attribute_edits_and_swaps_never_open_as_ok_long(tiny_store, data):
    _check_edit_never_opens(tiny_store, data)
