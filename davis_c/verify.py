"""Check a whole DAVIS-C store: ``python -m davis_c.verify --h5 davis_c.h5``.

Every shard linked in the index must exist, open, be complete and belong to the index's build; every
stored frame must match the SHA-256 recorded for it at build time, and every video's annotations theirs.
(Reads check the same on the fly, frame by frame; this goes through everything at once and lists all the
damage.)  Exit status: 0 = intact, 1 = damage found (each problem printed on its own line, naming the
shard file, the variant, the video and the frame), 2 = the index itself cannot be read.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from common.cli import cli_main, prog
from davis_c.store import DavisCStore, StoreError

__all__ = ["VerifyReport", "verify_store", "main"]


@dataclass
class VerifyReport:
    path: str
    shards: int = 0
    videos: int = 0
    frames: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_store(h5: str | Path, *, progress: bool = False,
                 report: Callable[[str], None] | None = None) -> VerifyReport:
    """Check every shard, frame and annotation of the store ``h5``; returns what was checked and found.
    ``report`` is called with each problem as it is found.  Raises :class:`StoreError` when the index
    cannot be read."""
    rep = VerifyReport(str(h5))

    def found(msg: str) -> None:
        rep.problems.append(msg)
        if report is not None:
            report(msg)

    with DavisCStore(h5, check=False) as store:
        bad_shards = set()
        for variant in store.variants:
            for msg in store.problems([variant]):
                found(msg)
                bad_shards.add(variant)
        good = [v for v in store.variants if v not in bad_shards]
        rep.shards = len(store.variants)
        for variant in tqdm(good, desc="verify", unit="shard", disable=not progress):
            for video in store.videos:
                for msg in store.damage(variant, video):
                    found(msg)
                rep.videos += 1
                try:
                    s, _, c = variant.partition("/")
                    rep.frames += len(store.variant_frame_names(s, c, video) if c else store.frame_names(video))
                except StoreError:
                    pass
    return rep


@cli_main("davis_c.verify", "nothing was changed")
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog=prog("davis_c.verify", "davis-c-verify"),
        description="Check a DAVIS-C store written by davis_c.build: every linked shard exists, opens, is "
                    "complete and of this build; every stored frame and annotation matches the SHA-256 "
                    "recorded at build time. Prints each problem (shard file, variant, video, frame). "
                    "Exit status 0 = intact, 1 = damaged, 2 = the index cannot be read.",
        epilog="example:\n  python -m davis_c.verify --h5 davis_c.h5\n"
               "A damaged shard is rebuilt by deleting it and rerunning the same davis_c.build command.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--h5", required=True, type=Path, help="store index file written by davis_c.build")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    try:
        rep = verify_store(args.h5, progress=not args.quiet, report=lambda m: print(f"DAMAGED {m}"))
    except StoreError as exc:
        print(f"davis_c.verify: error: {exc}", file=sys.stderr)
        return 2
    if rep.ok:
        print(f"{args.h5}: intact ({rep.shards} shards, {rep.videos} shard-videos, {rep.frames} frames verified)")
        return 0
    print(f"{args.h5}: {len(rep.problems)} problem(s) found in {rep.shards} shards", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
