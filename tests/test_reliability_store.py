"""Issue 14, store side: damaged bytes are never decoded (2), one build per output (4), one ffmpeg per store (5),
disk full gives one line and no partial file (6), damaged shards are named at open (7), SIGTERM/orphans and
crf temp folders (8)."""
from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import davis_c
from davis_c import build as B
from davis_c.corruptions import crf
from davis_c.store import StoreError, read_shard_attrs, shard_path

QUIET = {"progress": False, "log": lambda m: None}


@pytest.fixture(scope="module")
def small_store(tiny_davis_sample, tmp_path_factory):
    """clean + low/contrast + low/gaussian_noise + high/contrast of the tiny sample (pristine copy source)."""
    out = tmp_path_factory.mktemp("store") / "davis_c.h5"
    B.build(tiny_davis_sample, out, corruptions=["contrast", "gaussian_noise"], strengths=["low", "high"], **QUIET)
    return out


def _copy_store(src: Path, dest: Path) -> Path:
    shutil.copy2(src, dest / src.name)
    shutil.copytree(src.with_name(f"{src.stem}_shards"), dest / f"{src.stem}_shards")
    return dest / src.name


def _flip_frame_bytes(shard: Path, video: str, frame: int, n: int = 10) -> None:
    """XOR ``n`` bytes in the middle of one stored JPEG, in place in the shard file (as bit rot would)."""
    with h5py.File(shard, "r") as f:
        data = f[video]["frames"][frame].tobytes()
    raw = bytearray(shard.read_bytes())
    at = raw.find(data)
    assert at > 0 and raw.find(data, at + 1) < 0
    mid = at + len(data) // 2
    for i in range(n):
        raw[mid + i] ^= 0x5A
    shard.write_bytes(bytes(raw))


# ------------------------------------------------------------------------------------- 2: verify on read
def test_flipped_frame_bytes_are_refused_naming_file_variant_video_frame(small_store, tmp_path, capsys):
    h5 = _copy_store(small_store, tmp_path)
    with davis_c.open(h5) as store:
        video = store.videos[1]
        names = store.frame_names(video)
        good = store["high/contrast", video].frames
        assert len(store.frame_hashes("high/contrast", video)) == len(names)  # every shard has per-frame hashes
    shard = shard_path(h5, "high", "contrast")
    _flip_frame_bytes(shard, video, 3)
    with davis_c.open(h5) as store:
        with pytest.raises(StoreError) as exc:
            store["high", "contrast", video]
        msg = str(exc.value)
        assert str(shard) in msg and "'high/contrast'" in msg and repr(video) in msg and names[3] in msg
        np.testing.assert_array_equal(store["low/contrast", video].frames, store["low", "contrast", video].frames)
        assert store.images("high", "contrast", store.videos[0])  # the other video of the shard still reads
    # the whole-store check lists the damage and exits 1; an intact store exits 0
    from davis_c.verify import main as verify_main

    assert verify_main(["--h5", str(small_store), "--quiet"]) == 0
    assert "intact" in capsys.readouterr().out
    assert verify_main(["--h5", str(h5), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert out.count("DAMAGED") == 1 and str(shard) in out and f"frame {names[3]}" in out
    assert good.shape[0] == len(names)


def test_flipped_annotation_bytes_are_refused(small_store, tmp_path):
    h5 = _copy_store(small_store, tmp_path)
    clean = shard_path(h5, None, None)
    with h5py.File(clean, "r+") as f:  # rewrite one label in place (the stored hash stays the old one)
        video = sorted(k for k in f.keys())[0]
        m = f[video]["masks"][0]
        m[0, 0] = 7 if m[0, 0] != 7 else 6
        f[video]["masks"][0] = m
    with davis_c.open(h5) as store, pytest.raises(StoreError, match="annotations do not match"):
        store.masks(video)


# ------------------------------------------------------------------------------------- 7: shards at open
@pytest.mark.parametrize("damage", ["missing", "truncated", "header_flipped"])
def test_damaged_shard_is_named_when_the_store_is_opened(small_store, tmp_path, damage):
    h5 = _copy_store(small_store, tmp_path)
    shard = shard_path(h5, "high", "contrast")
    if damage == "missing":
        shard.unlink()
    elif damage == "truncated":
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    else:
        raw = bytearray(shard.read_bytes())
        rng = np.random.default_rng(0)
        for at in rng.integers(0, 96, 24):  # the superblock and root object header
            raw[at] ^= 0xFF
        shard.write_bytes(bytes(raw))
    with pytest.raises(StoreError) as exc:
        davis_c.open(h5)
    assert str(shard) in str(exc.value) and "high/contrast" in str(exc.value)
    # the harness refuses the data before any work, naming the shard file
    from harness.data import DataError, open_source

    with pytest.raises(DataError, match=str(shard)):
        open_source(h5)


# ------------------------------------------------------------------------------------- 4: one build per output
def test_second_build_into_a_locked_output_is_refused_naming_the_pid(tiny_davis_sample, tmp_path, capsys):
    from common.locks import LockHeld, OutputLock

    out = tmp_path / "davis_c.h5"
    holder = OutputLock(B.lock_path(out), "test")
    try:
        with pytest.raises(LockHeld, match=f"pid {os.getpid()}"):
            B.build(tiny_davis_sample, out, corruptions=["contrast"], strengths=["low"], seed=1, **QUIET)
        assert B.main(["--root", str(tiny_davis_sample), "--out", str(out), "--corruptions", "contrast",
                       "--strengths", "low", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"pid {os.getpid()}" in err and str(B.lock_path(out)) in err
        assert not out.exists() and not list(tmp_path.rglob("*.h5"))
    finally:
        holder.release()
    # released (or its holder killed): the next build takes it, and removes the lock file when done
    B.build(tiny_davis_sample, out, corruptions=["contrast"], strengths=["low"], **QUIET)
    assert out.is_file() and not B.lock_path(out).exists()


def test_lock_of_a_killed_holder_is_taken_over(tmp_path):
    from common.locks import OutputLock

    lock = tmp_path / "x.lock"
    code = f"from common.locks import OutputLock; l = OutputLock({str(lock)!r}); print('held', flush=True); " \
           "import time; time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        from common.locks import LockHeld

        with pytest.raises(LockHeld, match=f"pid {proc.pid}"):
            OutputLock(lock)
    finally:
        proc.kill()
        proc.wait()
    assert lock.exists()  # kill -9 leaves the file, but not the lock
    OutputLock(lock).release()
    assert not lock.exists()


# ------------------------------------------------------------------------------------- 5: ffmpeg identity
@pytest.fixture()
def other_ffmpeg(tmp_path, monkeypatch):
    """An ffmpeg of another build: a wrapper around the real binary (same version line, another file hash)."""
    real = crf.find_ffmpeg()
    wrapper = tmp_path / "bin" / "ffmpeg"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!/bin/sh\nexec {real} \"$@\"\n")
    wrapper.chmod(0o755)

    def use(path):
        monkeypatch.setenv("DAVIS_C_FFMPEG", str(path))
        crf.find_ffmpeg.cache_clear()
        crf.ffmpeg_version.cache_clear()

    yield wrapper, use
    monkeypatch.delenv("DAVIS_C_FFMPEG", raising=False)
    crf.find_ffmpeg.cache_clear()
    crf.ffmpeg_version.cache_clear()


def test_resumed_build_never_mixes_ffmpeg_builds(tiny_davis_sample, tmp_path, other_ffmpeg, capsys):
    wrapper, use = other_ffmpeg
    out = tmp_path / "davis_c.h5"
    first = crf.ffmpeg_identity()
    B.build(tiny_davis_sample, out, corruptions=["crf_compression"], strengths=["low"], **QUIET)
    use(wrapper)
    second = crf.ffmpeg_identity()
    assert second["version"] == first["version"] and second["sha256"] != first["sha256"]
    logs = []
    B.build(tiny_davis_sample, out, corruptions=["crf_compression"], strengths=["med", "high"], progress=False,
            log=logs.append)
    with davis_c.open(out) as store:  # one ffmpeg in the index: this build's; low (other ffmpeg) left out
        assert [v for v in store.variants if "crf" in v] == ["med/crf_compression", "high/crf_compression"]
        assert store.attrs["ffmpeg_sha256"] == second["sha256"]
        assert {store.shard_attrs(s, "crf_compression")["ffmpeg_sha256"] for s in ("med", "high")} == {second["sha256"]}
    assert any("low/crf_compression" in m and "ffmpeg" in m for m in logs)
    with pytest.raises(B.BuildError) as exc:  # resuming the shard made by the other ffmpeg is refused
        B.build(tiny_davis_sample, out, corruptions=["crf_compression"], **QUIET)
    assert first["sha256"][:16] in str(exc.value) and second["sha256"][:16] in str(exc.value)


def test_unknown_ffmpeg_version_is_an_error(tiny_davis_sample, tmp_path, other_ffmpeg, capsys):
    _, use = other_ffmpeg
    broken = tmp_path / "bin2" / "ffmpeg"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    use(broken)
    out = tmp_path / "davis_c.h5"
    assert B.main(["--root", str(tiny_davis_sample), "--out", str(out), "--corruptions", "crf_compression",
                   "--strengths", "low", "--quiet"]) == 2
    assert "version" in capsys.readouterr().err
    assert not shard_path(out, "low", "crf_compression").exists()


# ------------------------------------------------------------------------------------- 6: disk full
def test_disk_full_one_line_status_2_no_partial_files(tiny_davis_sample, tmp_path, monkeypatch, capsys):
    real_set, real_close = h5py.Dataset.__setitem__, h5py.File.close
    calls = []

    def setitem(self, key, value):  # what h5py raises when the disk is full (no file name in the OSError)
        calls.append(self.file.filename)
        if len(calls) == 40:  # several shards are open at this point
            raise OSError("Can't write data (file write failed: time = Tue Dec  1 10:00:00 2026, filename = "
                          f"'{self.file.filename}', file descriptor = 5, errno = 28, error message = 'No space "
                          "left on device', buf = 0x1, total write size = 4096, bytes this sub-write = 4096)")
        return real_set(self, key, value)

    def close(self):  # a full disk fails every flush on close too (after which the handle is gone)
        name = self.filename if self.id.valid else ""
        real_close(self)
        if name.endswith(".partial") and len(calls) >= 40:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", setitem)
    monkeypatch.setattr(h5py.File, "close", close)
    out = tmp_path / "davis_c.h5"
    code = B.main(["--root", str(tiny_davis_sample), "--out", str(out), "--quiet",
                   "--corruptions", "contrast", "pixelate", "saturate", "--strengths", "low"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "no space left on device" in err[0] and "Traceback" not in err[0]
    assert "davis_c_shards" in err[0] and ".h5" in err[0]  # names the file being written
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".partial")]
    assert not out.exists() and not B.lock_path(out).exists()


def test_read_only_output_one_line(tiny_davis_sample, tmp_path, monkeypatch, capsys):
    from davis_c import store as S

    def refuse(*a, **kw):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "davis_c_shards" / "clean.h5.1.partial"))

    monkeypatch.setattr(S.h5py, "File", refuse)
    assert B.main(["--root", str(tiny_davis_sample), "--out", str(tmp_path / "davis_c.h5"), "--quiet",
                   "--corruptions", "contrast", "--strengths", "low"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "read-only file system" in err[0] and "clean.h5" in err[0]


# ------------------------------------------------------------------------------------- 8: temp folders, signals
def test_crf_work_folders_live_under_the_output_and_are_cleaned(tiny_davis_sample, tmp_path, monkeypatch):
    out = tmp_path / "davis_c.h5"
    stale = B.temp_area(out) / f"{crf.TEMP_PREFIX}99999_left_by_kill"
    stale.mkdir(parents=True)
    (stale / "out.mp4").write_bytes(b"x")
    used = []
    real = crf.tempfile.TemporaryDirectory

    def spy(*a, **kw):
        used.append(kw.get("dir"))
        return real(*a, **kw)

    monkeypatch.setattr(crf.tempfile, "TemporaryDirectory", spy)
    B.build(tiny_davis_sample, out, corruptions=["crf_compression"], strengths=["low"], **QUIET)
    assert used and all(Path(d) == B.temp_area(out) for d in used)
    assert not stale.exists() and not B.temp_area(out).exists()


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_sigterm_and_kill_of_the_parent_end_the_workers(davis_sample, tmp_path, sig):
    out = tmp_path / "davis_c.h5"
    # the default sample (3 x 12 frames at 240x432), not the tiny one: on an idle machine the tiny build
    # finished before the loop below could see its workers
    cmd = [sys.executable, "-m", "davis_c.build", "--root", str(davis_sample), "--out", str(out), "--quiet",
           "--workers", "2", "--corruptions", "glass_blur", "crf_compression"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    shards = tmp_path / "davis_c_shards"
    deadline = time.time() + 120
    kids: list[int] = []
    while proc.poll() is None and time.time() < deadline:
        kids = _children(proc.pid)
        if len(kids) >= 3 and any(shards.glob("low__*.partial")):  # 2 workers + the resource tracker
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the build finished before it could be signalled"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGTERM:
        assert proc.returncode == 143 and "terminated" in err and "Traceback" not in err, err
        assert not list(shards.glob("*.partial"))
    else:
        assert proc.returncode == -signal.SIGKILL
    deadline = time.time() + 10
    while any(_alive(k) for k in kids) and time.time() < deadline:
        time.sleep(0.1)
    assert not [k for k in kids if _alive(k)], "worker processes outlived the builder"
    assert not list(Path(crf.tempfile.gettempdir()).glob(f"{crf.TEMP_PREFIX}{proc.pid}_*"))
    if sig == signal.SIGTERM:
        return
    # a rerun cleans what a kill left and completes the store
    assert subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    assert not list(shards.glob("*.partial")) and not B.temp_area(out).exists()


def test_crf_shards_of_other_encoder_settings_are_refused(tiny_davis_sample, tmp_path, monkeypatch):
    """The crf key holds the digest of the encoder arguments: a shard made with other ones (an older toolkit's
    x265 settings) is not resumed or linked, and the error says what differs."""
    out = tmp_path / "davis_c.h5"
    with monkeypatch.context() as m:
        m.setattr(crf, "pipeline_digest", lambda: "0" * 64)
        B.build(tiny_davis_sample, out, corruptions=["crf_compression"], strengths=["low"], **QUIET)
    assert read_shard_attrs(shard_path(out, "low", "crf_compression"))["crf_pipeline"] == "0" * 64
    with pytest.raises(B.BuildError, match="other crf encoder settings.*--force"):
        B.build(tiny_davis_sample, out, corruptions=["crf_compression"], strengths=["low"], **QUIET)
    B.build(tiny_davis_sample, out, corruptions=["crf_compression"], strengths=["low"], force=True, **QUIET)
    assert read_shard_attrs(shard_path(out, "low", "crf_compression"))["crf_pipeline"] == crf.pipeline_digest()


@pytest.mark.parametrize("where", ["inside_open", "after_open"])
def test_a_stop_between_a_writers_creation_and_its_registration_leaves_no_partial(tiny_davis_sample, tmp_path,
                                                                                  monkeypatch, where):
    """A SIGTERM (raised as ``Terminated``) can land on any line: inside the HDF5 open of a new shard, or
    after the writer exists but before the build holds it (the CI failure of stop 34: one
    ``low__crf_compression.h5.<pid>.partial`` outlived a SIGTERM).  Nothing half-written may stay."""
    from common.cli import Terminated
    from davis_c import store as S

    real_file, real_init = S.h5py.File, S.ShardWriter.__init__

    def file_then_stop(path, *a, **k):
        f = real_file(path, *a, **k)  # the partial exists on disk
        if str(path).endswith(".partial") and "low__contrast" in str(path):
            raise Terminated()
        return f

    def init_then_stop(self, final, attrs):
        real_init(self, final, attrs)
        if "low__contrast" in str(final):
            raise Terminated()

    if where == "inside_open":
        monkeypatch.setattr(S.h5py, "File", file_then_stop)
    else:
        monkeypatch.setattr(S.ShardWriter, "__init__", init_then_stop)
    out = tmp_path / "davis_c.h5"
    with pytest.raises(Terminated):
        B.build(tiny_davis_sample, out, corruptions=["contrast"], strengths=["low"], **QUIET)
    assert not list(tmp_path.rglob("*.partial"))
