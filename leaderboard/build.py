"""Build the leaderboard (CSVs, Markdown, PNG/SVG plots, index.html) from a harness results tree.

    python -m leaderboard.build --results results/ --out leaderboard_out/

Reads the result files only; never imports the models, so it runs anywhere pandas and
matplotlib do. Partial trees build: missing or failed units are marked, never averaged away.
"""
from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd

from common.atomic import write_text_atomic
from common.cli import cli_main, prog  # one top-level handler: SIGTERM, disk full/read-only -> one line, status 2
from leaderboard.benchmark import Benchmark, describe_benchmark
from leaderboard.paper import (compare_with_paper, comparison_display, comparison_notes, describe_missing,
                               load_paper_reference, published_display, reference_display, split_available)
from leaderboard.pages import make_pages, open_data
from leaderboard.plots import make_all_plots
from leaderboard.report import (COMPARISON_NOTE, SUMMARY_NOTE, costs_display, imported_sources,
                                relative_gain_display, render, render_report, robustness_display)
from leaderboard.results import ResultsError, load_results
from leaderboard.robustness import METRICS
from leaderboard.temporal import RECOVERY_NOTE, TEMPORAL_NOTE, recovery_display, temporal_display
from leaderboard.tables import (SUMMARY_COLUMNS, WEIGHT_FREE_COLUMNS, Tables, build_tables, corruption_display,
                                leaderboard_display, markdown_table, md_escape, summary_display)

__all__ = ["build", "markdown_report", "main"]


def _toolkit_version() -> str:
    try:
        return metadata.version("davis-c-toolkit")
    except metadata.PackageNotFoundError:
        return "unknown"


def _write_text(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    _write_text(path, df.to_csv(index=False, lineterminator="\n"))


def markdown_report(tables: Tables, paper_ref: pd.DataFrame, comparison: pd.DataFrame | None = None,
                    synthetic: list[str] | tuple[str, ...] = (), imported: dict[str, str] | None = None,
                    benchmark: Benchmark | None = None) -> str:
    """All tables as one Markdown document (J&F in percent); every name is escaped (``md_escape``)."""
    flagged = tables.random_init_methods
    out = [f"# {md_escape(benchmark.title if benchmark else 'DAVIS-C')} leaderboard", ""]
    if benchmark is not None:
        out += [f"- dataset: {md_escape(benchmark.dataset_line())}", f"- split: {md_escape(benchmark.split_line())}",
                f"- videos: {len(benchmark.videos)}", f"- variants: {md_escape(benchmark.variants_line())}",
                f"- paper columns: {md_escape(benchmark.paper_line())}", ""]
    if flagged:
        out += [f"> **WARNING: random-init weights** (numbers are meaningless): {md_escape(', '.join(flagged))}", ""]
    if synthetic:
        out += [f"> **SYNTHETIC results** (made-up numbers from leaderboard.synthetic): {md_escape(', '.join(synthetic))}", ""]
    for method, source in (imported or {}).items():
        out += [f"> {md_escape(method)}: predictions imported with harness.score from {md_escape(source)}", ""]
    out += ["## Summary (the paper's columns; mean ± std across seeds)", "",
            md_escape(SUMMARY_NOTE), "", markdown_table(summary_display(tables.summary, SUMMARY_COLUMNS)), "",
            "### Weight-free corruptions only (10 corruptions, no style1-4)", "",
            markdown_table(summary_display(tables.summary, WEIGHT_FREE_COLUMNS)), ""]
    if comparison is not None:
        out += ["## Ours vs published", "", md_escape(COMPARISON_NOTE), ""]
        if len(comparison):
            wide, pub = comparison_display(comparison), published_display(comparison)
            if len(wide):
                out += [markdown_table(wide), ""] + [f"- {md_escape(n)}" for n in comparison_notes(comparison)] + [""]
            if len(pub):
                out += ["### Other published numbers (presets' published lists)", "", markdown_table(pub), ""]
        else:
            out += ["No method names a published row (preset fields paper_name / published).", ""]
        if tables.random_init_methods:
            out += ["Not compared (random-init weights, not a real model): "
                    + md_escape(", ".join(tables.random_init_methods)), ""]
    out += ["## Robustness metrics", ""]
    out += [f"- **{name}**: {md_escape(text)}" for name, text in METRICS.items()] + [""]
    out += [markdown_table(robustness_display(tables)), ""]
    rg = relative_gain_display(tables)
    if len(rg):
        out += ["### Relative TTT gain per corruption (percent of the base J&F)", "", markdown_table(rg), ""]
    out += ["### Cost per video", "", markdown_table(costs_display(tables)), ""]
    for strength, t in corruption_display(tables.leaderboard, flagged).items():
        out += [f"## J&F per corruption, strength {md_escape(strength)}", "", markdown_table(t), ""]
    temporal = temporal_display(tables.temporal, flagged)
    if len(temporal):
        out += ["## Temporal suite (a separate benchmark, not in the summary columns)", "", md_escape(TEMPORAL_NOTE),
                "", markdown_table(temporal), ""]
        recovery = recovery_display(tables.recovery)
        if len(recovery):
            out += ["### Recovery after freeze and burst events", "", md_escape(RECOVERY_NOTE), "",
                    markdown_table(recovery), ""]
    out += ["## Leaderboard (per method and variant)", "", markdown_table(leaderboard_display(tables.leaderboard, flagged)), ""]
    have, slots = split_available(paper_ref)
    out += ["## Paper reference (published numbers, not measured here)", ""]
    out += [markdown_table(reference_display(have)) if not have.empty else "No sourced numbers shipped.", ""]
    if not slots.empty:
        out += ["Missing reference numbers (not invented): " + md_escape(describe_missing(slots)), ""]
    if len(tables.missing):
        out += [f"## Missing and failed units ({len(tables.missing)})", "",
                markdown_table(tables.missing[["method", "variant", "video", "seed", "status", "error"]].fillna("")), ""]
    return "\n".join(out)


def build(results: str | Path, out: str | Path, *, videos: list[str] | None = None,
          paper_reference: str | Path | None = None, strength: str | None = None,
          frame_video: str | None = None, frame_variant: str | None = None, strict: bool = False,
          pages: bool = True, data: str | Path | None = None, annotations: str | Path | None = None,
          page_variant: str | None = None, gallery_video: str | None = None,
          gallery_frame: int | None = None) -> dict[str, Path]:
    """Build every output into ``out`` and return the main files by name.

    ``pages``: also the per-video pages and the corruption gallery (``leaderboard.pages``), with frames from
    ``data`` (default: the data the unit records name) and masks saved by ``harness.run --save-masks``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = load_results(results, strict=strict)
    from leaderboard.propagation import load_propagation, propagation_markdown

    prop = load_propagation(results)  # JHMDB / VIP label propagation (PCK, mIoU)
    if prop:
        _write_csv(out / "propagation.csv", prop.variants)
        _write_csv(out / "propagation_strength.csv", prop.strengths)
        _write_text(out / "propagation.md", propagation_markdown(prop))
        if res.units.empty:  # only label-propagation results
            return {name: out / name for name in ("propagation.csv", "propagation_strength.csv", "propagation.md")}
    if res.units.empty:
        raise ResultsError(f"{results}: no results found (expected <method>/<variant>/<video>/seed<N>.json unit "
                           "files next to <method>/run.json, as harness.run writes them)")
    tables = build_tables(res, videos=videos)
    paper_ref = load_paper_reference(paper_reference)
    bench = describe_benchmark(res, tables.videos, tables.variants)
    comparison = compare_with_paper(tables.summary, tables.grid, res.runs, paper_ref, tables.random_init_methods)
    # the paper's numbers are on DAVIS-2017 val: a method measured on another benchmark is never put next to them
    comparison = comparison[comparison.method.isin(bench.paper_methods)].reset_index(drop=True)
    synthetic = [m for m, run in res.runs.items() if run.get("synthetic")]
    imported = imported_sources(res.runs)
    files = {
        "leaderboard.csv": tables.leaderboard.assign(random_init=tables.leaderboard.method.isin(tables.random_init_methods)),
        "summary.csv": tables.summary,
        "robustness.csv": tables.robustness.merge(tables.costs, on="method", how="left"),
        "ttt_relative_gain.csv": tables.relative_gain,
        "paper_comparison.csv": comparison,
        "per_video.csv": tables.per_video,
        "ttt_gain.csv": tables.ttt_gain,
        "missing.csv": tables.missing,
        "runs.csv": tables.runs,
        "paper_reference.csv": paper_ref,
    }
    if len(tables.temporal):  # the temporal suite: its own files
        files |= {"temporal.csv": tables.temporal, "temporal_recovery.csv": tables.recovery}
    written: dict[str, Path] = {name: out / name for name in ("propagation.csv", "propagation_strength.csv",
                                                               "propagation.md") if prop}
    for name, df in files.items():
        _write_csv(out / name, df)
        written[name] = out / name
    for strength_name, t in tables.corruptions.items():
        name = f"corruptions_{strength_name}.csv"
        _write_csv(out / name, t.reset_index())
        written[name] = out / name
    _write_text(out / "leaderboard.md", markdown_report(tables, paper_ref, comparison, synthetic, imported, bench)
                + ("\n" + propagation_markdown(prop) if prop else ""))
    written["leaderboard.md"] = out / "leaderboard.md"
    plots = make_all_plots(res, tables, out / "plots", strength=strength, frame_video=frame_video,
                           frame_variant=frame_variant, comparison=comparison)
    video_pages, gallery = [], None
    if pages:
        source, why = open_data(res, data, annotations)
        try:
            video_pages, gallery = make_pages(
                res, tables, out, render, source=source, variant=page_variant or frame_variant,
                source_note=f"Frames and ground truth: {source.describe()}." if source else f"No frames: {why}.",
                gallery_video=gallery_video, gallery_frame=gallery_frame,
                data_label=str(data) if data else (str(source.path) if source else None))
        finally:
            if source is not None:
                source.close()
        for p in video_pages:
            written[p["href"]] = out / p["href"]
        if gallery:
            written["gallery.html"] = out / "gallery.html"
    page = render_report(tables, plots, paper_ref, results_path=str(results), out_dir=out,
                         toolkit_version=_toolkit_version(), synthetic_methods=synthetic, comparison=comparison,
                         imported=imported, benchmark=bench, video_pages=video_pages, gallery=gallery)
    _write_text(out / "index.html", page)
    written["index.html"] = out / "index.html"
    for name, paths in plots.items():
        written[f"plots/{name}.png"] = paths["png"]
    return written


@cli_main("leaderboard.build", "files already written are complete; rerun to finish")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog("leaderboard.build", "leaderboard-build"),
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
    q = parser.add_argument_group("per-video pages and corruption gallery (mask overlays; masks from harness.run --save-masks)")
    q.add_argument("--data", type=Path, help="the DAVIS-C HDF5 store, DAVIS root or DAVIS-C folder tree the runs used "
                   "(default: the data_path the unit records name)")
    q.add_argument("--annotations", type=Path, help="DAVIS root with the ground truth of a DAVIS-C folder tree --data")
    q.add_argument("--page-variant", help="variant shown next to clean on every video page (default: --frame-variant, "
                   "else the first corrupted one)")
    q.add_argument("--gallery-video", help="video of the corruption gallery (default: the first video)")
    q.add_argument("--gallery-frame", type=int, help="frame index of the gallery (default: the video's middle frame)")
    q.add_argument("--no-pages", action="store_true", help="skip the per-video pages and the gallery")
    args = parser.parse_args(argv)
    videos = [v.strip() for v in args.videos.split(",") if v.strip()] if args.videos else None
    try:
        written = build(args.results, args.out, videos=videos, paper_reference=args.paper_reference,
                        strength=args.strength, frame_video=args.frame_video, frame_variant=args.frame_variant,
                        strict=args.strict, pages=not args.no_pages, data=args.data, annotations=args.annotations,
                        page_variant=args.page_variant, gallery_video=args.gallery_video,
                        gallery_frame=args.gallery_frame)
    except (ResultsError, ValueError) as exc:
        print(f"leaderboard.build: error: {exc}", file=sys.stderr)
        return 2
    print(f"leaderboard written to {args.out}: {len(written)} files; open {written.get('index.html', written.get('propagation.md'))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
