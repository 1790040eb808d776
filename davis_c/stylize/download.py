"""Fetch the four official DAVIS-C style images (``DAVIS-C/styles/1.png..4.png``) when online.

    python -m davis_c.stylize.download --out styles/

Each file is checked against the official md5 before it is moved into place; files already present
with the right md5 are kept, so reruns are free.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from common.atomic import write_bytes_atomic
import urllib.request
from pathlib import Path
from typing import Sequence

from .transfer import OFFICIAL_STYLE_MD5

__all__ = ["STYLES_URL", "download_official_styles", "main"]

#: folder of the official style images (raw files of the official repository's default branch).
STYLES_URL = "https://raw.githubusercontent.com/ttt-matching-based-vos/ttt_matching_vos/HEAD/DAVIS-C/styles/"


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def download_official_styles(out: str | os.PathLike, base_url: str = STYLES_URL, timeout: float = 60.0) -> Path:
    """Download 1.png..4.png into ``out`` (verified by md5, written atomically); returns ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, md5 in OFFICIAL_STYLE_MD5.items():
        target = out / name
        if target.is_file() and _md5(target.read_bytes()) == md5:
            continue
        url = base_url + name
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                data = response.read()
        except OSError as exc:
            raise OSError(f"cannot download {url}: {exc} (offline? copy DAVIS-C/styles/*.png of the official "
                          f"repository into {out} by hand)") from exc
        if _md5(data) != md5:
            raise ValueError(f"{url}: md5 {_md5(data)} is not the official {md5}; not written")
        write_bytes_atomic(target, data)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m davis_c.stylize.download",
                                     description="Download the four official DAVIS-C style images (md5-checked).")
    parser.add_argument("--out", default="styles", help="folder to write 1.png..4.png into (default: styles)")
    args = parser.parse_args(argv)
    try:
        path = download_official_styles(args.out)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"official style images in {path}: {', '.join(OFFICIAL_STYLE_MD5)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
