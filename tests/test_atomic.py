"""common.atomic: the one atomic writer: complete file or the old one, right mode, no temporaries left."""
import stat

import pytest

from common.atomic import FILE_MODE, TEMP_MARK, atomic_write, remove_stale_temps, write_bytes_atomic, write_text_atomic


def test_write_replaces_and_sets_mode(tmp_path):
    p = tmp_path / "sub" / "a.txt"
    write_text_atomic(p, "one\n")
    write_text_atomic(p, "two\n")
    assert p.read_text() == "two\n"
    assert stat.S_IMODE(p.stat().st_mode) == FILE_MODE
    assert [q.name for q in p.parent.iterdir()] == ["a.txt"]


def test_error_keeps_old_file_and_removes_temp(tmp_path):
    p = write_bytes_atomic(tmp_path / "b.bin", b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(p, "wb") as fh:
            fh.write(b"half")
            raise RuntimeError("boom")
    assert p.read_bytes() == b"old"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["b.bin"]


def test_remove_stale_temps(tmp_path):
    (tmp_path / "d").mkdir()
    stale = tmp_path / "d" / f".x.json{TEMP_MARK}abc.tmp"
    stale.write_text("x")
    keep = tmp_path / "d" / "x.json"
    keep.write_text("y")
    assert remove_stale_temps(tmp_path) == 1
    assert not stale.exists() and keep.exists()


def test_atomic_dir_replaces_a_folder_whole_or_not_at_all(tmp_path):
    from common.atomic import atomic_dir

    target = tmp_path / "masks"
    with atomic_dir(target) as tmp:
        (tmp / "a.png").write_bytes(b"1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "b.png").write_bytes(b"2")
            raise RuntimeError("killed half-way")
    assert sorted(p.name for p in target.iterdir()) == ["a.png"]      # the old complete folder survives
    with atomic_dir(target) as tmp:
        (tmp / "c.png").write_bytes(b"3")
    assert sorted(p.name for p in target.iterdir()) == ["c.png"]      # replaced as a whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masks"]    # no temporary folder left

