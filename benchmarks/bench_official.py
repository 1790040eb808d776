"""Every model against its official code, in one run, into one table.

Give the checkouts you have (each is optional; a model without one is skipped, not compared with a
stand-in); every model benchmark then runs with ``--official`` at each thread count, and the rows they
write are printed as one Markdown table (model, threads, ours, official, ratio, agreement), with the
commit of each official checkout, ready for ``docs/performance.md``:

    pip install hydra-core iopath          # what the official SAM 2 and Cutie code import (not ours)
    python benchmarks/bench_official.py --sam2 ~/src/sam2 --cutie ~/src/Cutie --stcn ~/src/STCN \\
        --xmem ~/src/XMem --threads 1 2 --out official.md

Sizes: SAM 2.1-t on 8 frames (it always runs at 1024x1024), the others on 7-12 frames at 480x864
(DAVIS size); ``--quick`` uses 240x432 and fewer frames (a smoke test of the set-up, minutes).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _commands(args, threads: int, rows: Path) -> list[tuple[str, list[str]]]:
    big = "240x432" if args.quick else "480x864"
    out = []
    if args.sam2:
        out.append(("sam2", ["bench_sam2.py", "--models", "sam2.1_hiera_t", "--frames", "4" if args.quick else "8",
                             "--threads", str(threads), "--official", str(args.sam2)]))
    if args.cutie:
        for variant in ("base", "small"):
            out.append((f"cutie-{variant}", ["bench_cutie.py", "--variant", variant, "--sizes", big, "--frames",
                                             "4" if args.quick else "7", "--threads", str(threads),
                                             "--official", str(args.cutie)]))
    if args.stcn:
        out.append(("stcn", ["bench_stcn.py", "--sizes", big, "--frames", "6" if args.quick else "12",
                             "--threads", str(threads), "--official", str(args.stcn)]))
    if args.xmem:
        out.append(("xmem", ["bench_xmem.py", "speed", "--sizes", big, "--frames", "4" if args.quick else "7",
                             "--threads", str(threads), "--repeats", "1", "--official", str(args.xmem)]))
    return [(name, [sys.executable, str(HERE / cmd[0]), *cmd[1:], "--json", str(rows)]) for name, cmd in out]


def table(rows: list[dict]) -> str:
    lines = ["| model | threads | size | ours s/frame | official s/frame | ratio (official / ours) | "
             "ours peak MB | official peak MB | label maps equal | official commit |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        mb = (f"{r['ours_mb']:.0f} | {r['reference_mb']:.0f}" if r.get("ours_mb") is not None else "- | -")
        agree = "-" if r.get("equal_fraction") is None else (
            f"{100 * r['equal_fraction']:.4f} % ({r['pixels_differ']} px differ)")
        lines.append(f"| {r['model']} | {r['threads']} | {r['size']} | {r['ours_s']:.3f} | {r['reference_s']:.3f} | "
                     f"{r['ratio']:.2f} | {mb} | {agree} | {r.get('commit') or '-'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, repo in (("sam2", "facebookresearch/sam2"), ("cutie", "hkchengrex/Cutie"), ("stcn", "hkchengrex/STCN"),
                       ("xmem", "hkchengrex/XMem")):
        p.add_argument(f"--{name}", type=Path, metavar="PATH", help=f"checkout of github.com/{repo}")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts (default: 1 2)")
    p.add_argument("--quick", action="store_true", help="240x432, few frames: checks the set-up in minutes")
    p.add_argument("--out", type=Path, help="also write the table (Markdown) to this file")
    args = p.parse_args(argv)
    if not any((args.sam2, args.cutie, args.stcn, args.xmem)):
        p.error("give at least one official checkout (--sam2, --cutie, --stcn, --xmem)")
    with tempfile.TemporaryDirectory(prefix="bench_official_") as tmp:
        rows_file = Path(tmp) / "rows.jsonl"
        for threads in args.threads:
            for name, cmd in _commands(args, threads, rows_file):
                print(f"== {name}, {threads} thread(s): {' '.join(cmd[1:])}", flush=True)
                if subprocess.run(cmd, cwd=HERE.parent).returncode != 0:
                    print(f"bench_official: {name} failed (its output is above)", file=sys.stderr)
                    return 1
        rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    rows.sort(key=lambda r: (r["model"], r["threads"]))
    text = table(rows)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
