"""The docs tell the truth about the command line.

* Every ``python -m <module> ...`` command written in README.md or docs/*.md names a module that exists,
  and every ``--option`` it uses is one that module's ``--help`` lists (so a renamed or removed flag
  cannot survive in the docs).
* The README's quick start runs as written, start to finish, in a fresh folder (slow: minutes on CPU).
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_SHELL = ("", "bash", "sh", "console")


def _commands(text: str) -> list[str]:
    """Shell lines of the fenced blocks that call ``python -m`` (continuations joined, comments cut)."""
    out = []
    for lang, block in _FENCE.findall(text):
        if lang not in _SHELL:
            continue
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            for part in re.split(r"&&|;|\|", line):
                part = part.strip()
                if part.startswith("python -m "):
                    out.append(part)
    return out


def _documented() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for cmd in _commands(path.read_text(encoding="utf-8")):
            found.append((path.name, cmd))
    return found


@lru_cache(maxsize=None)
def _help(module: str) -> str:
    proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0, f"python -m {module} --help failed:\n{proc.stderr[-2000:]}"
    return proc.stdout


DOCUMENTED = _documented()


def test_docs_have_commands():
    assert len(DOCUMENTED) >= 10


@pytest.mark.parametrize("where, command", DOCUMENTED, ids=[f"{w}:{c[:60]}" for w, c in DOCUMENTED])
def test_documented_command_uses_existing_options(where, command):
    if command.startswith("python -m pytest") or command.startswith("python -m pip"):
        return
    words = shlex.split(command, comments=True)
    module = words[2]
    text = _help(module)
    for word in words[3:]:
        if word.startswith("--"):
            flag = word.split("=", 1)[0]
            assert re.search(rf"(^|[\s,\[]){re.escape(flag)}\b", text), \
                f"{where}: `{command}` uses {flag}, which `python -m {module} --help` does not list"


def _quickstart_script() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = [b for lang, b in _FENCE.findall(section) if lang in _SHELL]
    assert len(blocks) >= 2, "the README quick start lost its command blocks"
    return "set -euo pipefail\n" + "\n".join(blocks)


@pytest.mark.slow
def test_readme_quick_start_runs_as_written(tmp_path):
    # `python` in the commands is this interpreter: its own bin folder first on PATH (a venv's python must be
    # started from its venv, so a symlink elsewhere would lose the installed packages)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(["bash", "-c", _quickstart_script()], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1.000" in proc.stdout
    assert (tmp_path / "leaderboard_out" / "index.html").is_file()
    assert (tmp_path / "results" / "labelprop" / "run.json").is_file()
