"""Export a DAVIS-C store to the official folder layout, for the official STCN/TTT code.

    python -m davis_c.export --h5 davis_c.h5 --out DAVIS-C

writes ``DAVIS-C/<strength>/<corruption>/<video>/<frame>.jpg``.  With the default JPEG codec the stored
bytes are copied as they are (no re-encoding: the files are exactly what the build produced, i.e. what the
official generator writes); a store built with ``--codec png`` is encoded to JPEG quality 95 like
``cv2.imwrite``.  ``--clean`` also writes the source frames to ``<out>/clean/<video>/``.  Files are written
atomically, so an interrupted export can simply be rerun: the export holds ``<out>/.export.lock`` and a
rerun removes the temporary files a killed export left in the frame folders.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from common.atomic import TEMP_MARK, write_bytes_atomic
from common.cli import cli_main, prog
from common.locks import hold_lock
from davis_c.store import DavisCStore, StoreError, decode_frame, encode_frame

__all__ = ["export", "main"]


def _write(path: Path, data: bytes) -> None:
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    write_bytes_atomic(path, data)


def _remove_stale_temporaries(folder: Path, names: Sequence[str]) -> None:
    """Remove the temporary files an interrupted export (``kill -9``) left for these frames
    (``.<frame>.jpg.tmp-*.tmp``, :mod:`common.atomic`): the export holds its lock, so they are its own."""
    for name in names:
        for p in folder.glob(f".{name}.jpg{TEMP_MARK}*.tmp"):
            p.unlink(missing_ok=True)


def export(h5: str | os.PathLike, out: str | os.PathLike, *, strengths: Sequence[str] | None = None,
           corruptions: Sequence[str] | None = None, videos: Sequence[str] | None = None,
           clean: bool = False, progress: bool = True) -> int:
    """Write the official layout under ``out``; returns the number of files written or checked."""
    out = Path(out)
    count = 0
    out.mkdir(parents=True, exist_ok=True)
    with hold_lock(out / ".export.lock", f"the export into {out}"), DavisCStore(h5) as store:
        for what, items in (("strength", strengths), ("corruption", corruptions), ("video", videos)):
            known = getattr(store, what + "s")
            bad = [x for x in items or () if x not in known]
            if bad:
                raise StoreError(f"{h5}: no {what} {', '.join(bad)} in the store; present: {', '.join(known)}")
        vids = [v for v in store.videos if not videos or v in videos]
        jobs: list[tuple[str | None, str | None, Path]] = []
        if clean:
            jobs += [(None, None, out / "clean")]
        for s in store.strengths:
            if strengths and s not in strengths:
                continue
            for c in store.corruptions:
                if (not corruptions or c in corruptions) and f"{s}/{c}" in store.variants:
                    jobs.append((s, c, out / s / c))
        for s, c, folder in tqdm(jobs, desc="export", unit="variant", disable=not progress):
            codec = store.shard_attrs(s, c).get("codec", "jpeg")
            for v in vids:
                names = store.variant_frame_names(s, c, v)  # stride (temporal suite): the kept frames
                images = store.images(s, c, v)
                vdir = folder / v
                vdir.mkdir(parents=True, exist_ok=True)
                _remove_stale_temporaries(vdir, names)
                for name, data in zip(names, images):
                    if codec != "jpeg" and s is not None:
                        data = encode_frame(decode_frame(data, f"{h5}:{s}/{c}/{v}/{name}"), "jpeg")
                    _write(vdir / f"{name}.jpg", data)
                    count += 1
    return count


@cli_main("davis_c.export", "files written so far are complete; rerun the same command to finish")
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog("davis_c.export", "davis-c-export"),
                                description="Write a DAVIS-C store as DAVIS-C/<strength>/<corruption>/<video>/"
                                            "<frame>.jpg (the official layout; JPEG bytes copied).")
    p.add_argument("--h5", required=True, type=Path, help="store index file written by davis_c.build")
    p.add_argument("--out", required=True, type=Path, help="output root, e.g. DAVIS-C")
    p.add_argument("--strengths", nargs="+", help="only these strengths (default all)")
    p.add_argument("--corruptions", nargs="+", help="only these corruptions (default all in the store)")
    p.add_argument("--videos", nargs="+", help="only these videos (default all)")
    p.add_argument("--clean", action="store_true", help="also write the source frames to <out>/clean/")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    try:
        n = export(args.h5, args.out, strengths=args.strengths, corruptions=args.corruptions,
                   videos=args.videos, clean=args.clean, progress=not args.quiet)
    except (StoreError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"exported {n} frames to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
