"""The reference data shipped in the repository are complete and unmodified (checksum manifests).

A partial copy, a Git LFS pointer, a file dropped by an ignore rule or an edited golden would otherwise
show up as confusing failures (or, worse, a test passing against the wrong data) far from the cause.
With ``DAVIS_C_SHARED`` set the tests read that copy instead, which is not checked here.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from refdata import ENV_VAR, TOP_LEVEL, ReferenceData, reference_path, shared_override

TESTS = Path(__file__).resolve().parent
MANIFESTS = {TESTS / "golden" / "SHA256SUMS": TESTS / "golden", TESTS / "data" / "SHA256SUMS": TESTS / "data"}


def _manifest(path: Path) -> dict[str, str]:
    entries = {}
    for line in path.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        entries[name.removeprefix("./")] = digest
    return entries


@pytest.mark.parametrize("manifest", list(MANIFESTS), ids=lambda p: p.parent.name)
def test_in_repository_copies_match_their_manifest(manifest):
    base = MANIFESTS[manifest]
    entries = _manifest(manifest)
    assert len(entries) > 100
    for name, digest in entries.items():
        path = base / name
        assert path.is_file(), f"{path} is missing (listed in {manifest})"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{path} differs from {manifest}"
    if manifest.parent.name == "golden":  # and nothing unlisted hides in the golden folder
        listed = set(entries) | {"SHA256SUMS", "PROVENANCE.md", ".gitignore"}
        present = {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}
        assert present <= listed, f"unlisted files: {sorted(present - listed)[:5]}"


def test_every_golden_set_has_its_readme(golden):
    sets = {p.name for p in golden.iterdir() if p.is_dir()}
    assert {"jf", "davis_c", "stcn", "xmem", "labelprop", "cutie", "sam2"} <= sets
    for name in sets:
        assert (golden / name / "README.md").is_file(), name


def test_lookup_uses_the_repository_copy_unless_overridden(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert shared_override() is None
    assert reference_path("golden/xmem/meta.json") == TESTS / "golden" / "xmem" / "meta.json"
    assert ReferenceData() / "davis_c_styles" / "1.png" == TESTS / "data" / "davis_c_styles" / "1.png"
    assert reference_path("real_davis16") == TOP_LEVEL["real_davis16"]
    assert reference_path("spec/stylization.md") == TESTS / "data" / "spec" / "stylization.md"
    assert (reference_path("real_davis16") / "ImageSets" / "480p" / "val.txt").is_file()
    monkeypatch.setenv(ENV_VAR, str(tmp_path))  # a newer shared folder replaces every name
    assert reference_path("golden/xmem") == tmp_path / "golden" / "xmem"
    assert ReferenceData() / "real_davis16" == tmp_path / "real_davis16"
    with pytest.raises(KeyError, match="davis_c_styles"):
        reference_path("paper/table1.md")
