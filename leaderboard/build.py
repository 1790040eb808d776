"""Build the leaderboard (CSVs, Markdown, PNG/SVG plots, index.html) from a harness results tree.

    python -m leaderboard.build --results results/ --out leaderboard_out/

Reads files only (the layout of :mod:`harness.results`); never imports the models, so it runs anywhere pandas and
matplotlib do. Partial trees build: missing or failed units are marked, never averaged away.
"""
from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd

from davis_c.cli import cli_main  # one top-level handler: SIGTERM, disk full/read-only -> one line, status 2
from leaderboard.paper import describe_missing, load_paper_reference, reference_display, split_available
from leaderboard.plots import make_all_plots
from leaderboard.report import render_report
from leaderboard.results import ResultsError, load_results
from leaderboard.tables import (Tables, build_tables, corruption_display, leaderboard_display, markdown_table,
                                summary_display)


def _toolkit_version() -> str:
    try:
        return metadata.version("davis-c-toolkit")
    except metadata.PackageNotFoundError:
        return "unknown"


def _write_text(path: Path, text: str) -> None:
    """Atomic write: a temporary file in the same folder, then rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    _write_text(path, df.to_csv(index=False, lineterminator="\n"))


def markdown_report(tables: Tables, paper_ref: pd.DataFrame) -> str:
    """All tables as one Markdown document (J&F in percent)."""
    flagged = tables.random_init_methods
    out = ["# DAVIS-C leaderboard", ""]
    if flagged:
        out += [f"> **WARNING: random-init weights** (numbers are meaningless): {', '.join(flagged)}", ""]
    out += ["## Summary (mean over the 14 corruptions per strength; mean ± std across seeds)", "",
            markdown_table(summary_display(tables.summary)), ""]
    for strength, t in corruption_display(tables.leaderboard, flagged).items():
        out += [f"## J&F per corruption, strength {strength}", "", markdown_table(t), ""]
    out += ["## Leaderboard (per method and variant)", "", markdown_table(leaderboard_display(tables.leaderboard, flagged)), ""]
    have, slots = split_available(paper_ref)
    out += ["## Paper reference (published numbers, not measured here)", ""]
    out += [markdown_table(reference_display(have)) if not have.empty else "No sourced numbers shipped.", ""]
    if not slots.empty:
        out += ["Missing reference numbers (not invented): " + describe_missing(slots), ""]
    if len(tables.missing):
        out += [f"## Missing and failed units ({len(tables.missing)})", "",
                markdown_table(tables.missing[["method", "variant", "video", "seed", "status", "error"]].fillna("")), ""]
    return "\n".join(out)


def build(results: str | Path, out: str | Path, *, videos: list[str] | None = None,
          paper_reference: str | Path | None = None, strength: str | None = None,
          frame_video: str | None = None, frame_variant: str | None = None, strict: bool = False) -> dict[str, Path]:
    """Build every output into ``out`` and return the main files by name."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = load_results(results, strict=strict)
    if res.units.empty:
        raise ResultsError(f"{results}: no results found (expected <method>/<variant>/<video>/seed<N>.json unit "
                           "files next to <method>/run.json, as harness.run writes them)")
    tables = build_tables(res, videos=videos)
    paper_ref = load_paper_reference(paper_reference)
    files = {
        "leaderboard.csv": tables.leaderboard.assign(random_init=tables.leaderboard.method.isin(tables.random_init_methods)),
        "summary.csv": tables.summary,
        "per_video.csv": tables.per_video,
        "ttt_gain.csv": tables.ttt_gain,
        "missing.csv": tables.missing,
        "runs.csv": tables.runs,
        "paper_reference.csv": paper_ref,
    }
    written: dict[str, Path] = {}
    for name, df in files.items():
        _write_csv(out / name, df)
        written[name] = out / name
    for strength_name, t in tables.corruptions.items():
        name = f"corruptions_{strength_name}.csv"
        _write_csv(out / name, t.reset_index())
        written[name] = out / name
    _write_text(out / "leaderboard.md", markdown_report(tables, paper_ref))
    written["leaderboard.md"] = out / "leaderboard.md"
    plots = make_all_plots(res, tables, out / "plots", strength=strength, frame_video=frame_video,
                           frame_variant=frame_variant)
    synthetic = [m for m, run in res.runs.items() if run.get("synthetic")]
    page = render_report(tables, plots, paper_ref, results_path=str(results), out_dir=out,
                         toolkit_version=_toolkit_version(), synthetic_methods=synthetic)
    _write_text(out / "index.html", page)
    written["index.html"] = out / "index.html"
    for name, paths in plots.items():
        written[f"plots/{name}.png"] = paths["png"]
    return written


@cli_main("leaderboard.build", "files already written are complete; rerun to finish")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m leaderboard.build",
        description="Turn harness results (results/<method>/...) into leaderboard CSVs, Markdown tables, "
                    "PNG/SVG plots and a self-contained index.html. Values in CSVs are fractions in [0,1] "
                    "(as the official evaluator writes them); Markdown, HTML and plots show percent.",
        epilog="examples:\n"
               "  python -m leaderboard.build --results results/ --out leaderboard_out/\n"
               "  python -m leaderboard.build --results results/ --out lb/ --videos blackswan,dog --strength high\n"
               "  python -m leaderboard.synthetic --out demo/ && python -m leaderboard.build --results demo/ --out demo_lb/\n"
               "A cell is computed only when every expected video has an ok unit for every seed; otherwise it is\n"
               "marked incomplete/missing and listed in missing.csv and the report's 'Missing and failed' section.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results"), help="results tree written by harness.run (default: results/)")
    parser.add_argument("--out", type=Path, default=Path("leaderboard_out"), help="output folder (default: leaderboard_out/)")
    parser.add_argument("--videos", help="comma-separated list of videos every cell must contain "
                        "(default: every video found anywhere in the tree)")
    parser.add_argument("--paper-reference", type=Path, help="CSV of published numbers to show (default: the shipped one)")
    parser.add_argument("--strength", choices=["low", "med", "high"], help="strength of the per-video TTT plot (default: med)")
    parser.add_argument("--frame-video", help="video of the per-frame J&F plot (default: the first video)")
    parser.add_argument("--frame-variant", help="variant of the per-frame plot, e.g. high/contrast (default: the first corrupted one)")
    parser.add_argument("--strict", action="store_true", help="stop on the first unreadable unit file instead of reporting it")
    args = parser.parse_args(argv)
    videos = [v.strip() for v in args.videos.split(",") if v.strip()] if args.videos else None
    try:
        written = build(args.results, args.out, videos=videos, paper_reference=args.paper_reference,
                        strength=args.strength, frame_video=args.frame_video, frame_variant=args.frame_variant,
                        strict=args.strict)
    except (ResultsError, ValueError) as exc:
        print(f"leaderboard.build: error: {exc}", file=sys.stderr)
        return 2
    print(f"leaderboard written to {args.out}: {len(written)} files; open {written['index.html']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
