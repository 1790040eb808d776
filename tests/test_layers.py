"""The house's floors are a checked contract (``[tool.importlinter]`` in pyproject.toml, docs/architecture.md).

``common`` is the ground floor; ``davis_c`` and ``models`` stand on it and not on each other; ``harness``
on those; ``leaderboard`` on ``harness`` and ``common`` and never, not even through ``harness``, on
``davis_c`` or ``models``; no package has an import cycle between its modules or subpackages.  Each
contract is one test, and a broken one fails with import-linter's report, which names the import
(``davis_c.x -> models.y (l.20)``) or the import whose removal breaks the cycle.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ("floors", "leaderboard-reads-files", "no-cycles")


def lint(root: Path, contracts: tuple[str, ...] = (), pythonpath: Path | None = None) -> tuple[int, str]:
    """Run import-linter (in a child process: it reads the packages from files, not sys.modules) on the
    ``pyproject.toml`` of ``root``; returns (exit status, report)."""
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename='pyproject.toml', limit_to_contracts={contracts!r}, "
            "no_cache=True, no_logo=True))")
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    res = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                         timeout=300)
    return res.returncode, res.stdout + res.stderr


def test_every_contract_has_a_test():
    ids = re.findall(r'^id = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), flags=re.M)
    assert tuple(ids) == CONTRACTS


@pytest.mark.parametrize("contract", CONTRACTS)
def test_contract_is_kept(contract):
    status, report = lint(ROOT, (contract,))
    assert status == 0 and "1 kept, 0 broken" in report, f"import contract {contract!r} is broken:\n{report}"


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_contracts_name_what_breaks_them(tmp_path):
    """The same contracts on a small tree with one upward import, one forbidden import and one cycle."""
    section = (ROOT / "pyproject.toml").read_text().split("\n[tool.importlinter]\n", 1)[1]
    section = section.split("\n[tool.", 1)[0] if "\n[tool." in section else section
    (tmp_path / "pyproject.toml").write_text("[tool.importlinter]\n" + section)
    empty = {f"{p}/__init__.py": "" for p in ("common", "davis_c", "models", "harness", "leaderboard")}
    _tree(tmp_path, {**empty,
                     "common/base.py": "",
                     "davis_c/reader.py": "import common.base\n",
                     "models/net.py": "import davis_c.reader\n",          # sideways: models -> davis_c
                     "harness/a.py": "import harness.b\n",
                     "harness/b.py": "def f():\n    import harness.a\n",  # a cycle, even through a lazy import
                     "harness/data.py": "import davis_c.reader\n",
                     "leaderboard/pages.py": "def f():\n    import harness.data\n",  # the one listed exception
                     "leaderboard/tables.py": "import harness.data\n"})   # leaderboard -> davis_c through harness
    status, out = lint(tmp_path, pythonpath=tmp_path)
    assert status == 1, out
    assert "Contracts: 0 kept, 3 broken" in out, out
    assert "models.net -> davis_c.reader" in out, out
    assert "leaderboard.tables -> harness.data" in out and "harness.data -> davis_c.reader" in out, out
    assert ".b -> .a" in out or ".a -> .b" in out, out
