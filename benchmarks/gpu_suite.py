"""The one prepared GPU run: every figure that sizes a DAVIS-C campaign, in one command, under 8 minutes.

    python -m benchmarks.gpu_suite                        # on a CUDA machine: the full suite (about 6 min on an H100)
    python -m benchmarks.gpu_suite --tiny --device cpu    # the same code at a tiny size (CI runs this: it cannot rot)
    python -m harness.run --method stcn+mcc --data davis_c.h5 --estimate --figures gpu_suite_out/figures.json

On a synthetic DAVIS-sized video (480x854, 70 frames, 2 objects moving over texture, ground truth on every
frame; ``benchmarks/_device.py``) with golden-init weights (the cost depends on the architecture, not on the
weights), in this order of priority:

1. inference of STCN, XMem, Cutie, SAM 2.1-t and SAM 2.1-b+: seconds per frame and peak device memory, in
   **exact** mode (float32, TF32 off, cudnn autotuning off: what the toolkit is tested on) and **fast** mode
   (``amp=True``: bfloat16 autocast, TF32, channels_last, cudnn benchmark), with the J&F of each against the
   synthetic ground truth and fast's J&F against exact's labels (100 = the same segmentation);
2. one tt-MCC, tt-Ent and tt-AE unit of STCN (the released protocol: 10 rounds x 10 iterations), both modes;
3. units per hour per device with 1, 2 and 4 workers (STCN inference and STCN + tt-MCC, exact mode).

Each measurement runs in a fresh process (its own peak memory).  A time budget (``--budget-min``, default
7.5) skips what no longer fits and says so in the outputs; the order above puts the figures the estimate needs
first.  Written to ``--out`` (default ``gpu_suite_out/``): ``gpu_suite.json`` (every figure, the device and
the environment), ``gpu_suite.md`` (the Markdown tables ``docs/performance.md`` carries between its
``gpu_suite`` markers; ``--update-docs`` rewrites that block) and ``figures.json`` (the
``harness.run --estimate --figures`` format).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import _device  # noqa: E402  (the measurement machinery shared with bench_ttt/stcn/xmem)

__all__ = ["SCHEMA", "Suite", "INFERENCE", "TTT_KINDS", "UNIT_ROWS", "plan", "figures", "run_suite", "markdown", "update_docs", "main"]

SCHEMA = "davis_c.gpu_suite/1"
#: (method name as the harness spells it, model name for models.load_model)
INFERENCE: tuple[tuple[str, str], ...] = (("stcn", "stcn"), ("xmem", "xmem"), ("cutie", "cutie"),
                                          ("sam2.1-t", "sam2.1_hiera_t"), ("sam2.1-b+", "sam2.1_hiera_b+"))
TTT_KINDS = ("mcc", "ent", "ae")
#: (section, method) of every per-unit row, in table order (a name alone does not say its section:
#: "sam2.1-b+" is inference, "stcn+mcc" is TTT)
UNIT_ROWS: tuple[tuple[str, str], ...] = (tuple(("inference", m) for m, _ in INFERENCE)
                                          + tuple(("ttt", f"stcn+{k}") for k in TTT_KINDS))
DOCS_BEGIN, DOCS_END = "<!-- gpu_suite:begin -->", "<!-- gpu_suite:end -->"


@dataclass(frozen=True)
class Suite:
    """What to measure and at which size (the defaults are the full GPU suite)."""

    device: str
    height: int = _device.DAVIS_SIZE[0]
    width: int = _device.DAVIS_SIZE[1]
    frames: int = _device.DAVIS_FRAMES
    objects: int = 2
    rounds: int | None = None           # None: the released TTT protocol (10 x 10)
    iterations: int | None = None
    workers: tuple[int, ...] = (1, 2, 4)
    modes: tuple[str, ...] = ("exact", "fast")
    budget_s: float = 450.0
    threads: int | None = None
    sam2_image_size: int = 1024         # SAM 2 resizes every frame to this square (1024: the official size)

    @classmethod
    def tiny(cls, device: str, **kw: Any) -> "Suite":
        """The CI size: every code path, seconds instead of minutes."""
        return cls(device, height=48, width=80, frames=4, rounds=1, iterations=1, workers=(1, 2),
                   sam2_image_size=128, **kw)


@dataclass(frozen=True)
class Step:
    """One measurement: a label, what it measures and how."""

    section: str            # inference | ttt | throughput
    method: str
    mode: str
    spec: _device.UnitSpec
    workers: int = 0        # throughput steps only


def plan(suite: Suite) -> list[Step]:
    """The measurements in priority order (a pure function of the suite)."""
    base = _device.UnitSpec("stcn", None, device=suite.device, height=suite.height, width=suite.width,
                            frames=suite.frames, objects=suite.objects, rounds=suite.rounds,
                            iterations=suite.iterations, threads=suite.threads)
    def load(model: str) -> tuple:
        return (("image_size", suite.sam2_image_size),) if model.startswith("sam2") else ()

    steps = [Step("inference", method, mode, replace(base, model=model, amp=mode == "fast", load_options=load(model)))
             for method, model in INFERENCE for mode in suite.modes]
    steps += [Step("ttt", f"stcn+{kind}", mode, replace(base, kind=kind, amp=mode == "fast"))
              for kind in TTT_KINDS for mode in suite.modes]
    steps += [Step("throughput", method, "exact", replace(base, kind=kind), workers=n)
              for method, kind in (("stcn", None), ("stcn+mcc", "mcc")) for n in suite.workers if n > 0]
    return steps


def _measure(step: Step, ref: dict[str, str]) -> dict[str, Any]:
    if step.section == "throughput":
        return {"units_per_hour": _device.throughput(step.spec, step.workers)}
    key = step.method
    spec = step.spec
    if step.mode == "exact":
        spec = replace(spec, save_labels=ref.setdefault(key, ref["_dir"] + f"/{key.replace('+', '_')}.npy"))
    elif key in ref:
        spec = replace(spec, ref_labels=ref[key])
    out = _device._in_child(spec)
    out["s_per_frame"] = out["inference_s"] / spec.frames
    return out


def run_suite(suite: Suite, log: Callable[[str], None] = print,
              measure: Callable[[Step, dict], dict] = _measure) -> dict[str, Any]:
    """Run :func:`plan` within the budget; every step's figures or the reason it has none."""
    start = time.perf_counter()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gpu_suite_") as tmp:
        ref = {"_dir": tmp}
        for step in plan(suite):
            row = {"section": step.section, "method": step.method, "mode": step.mode, "workers": step.workers}
            elapsed = time.perf_counter() - start
            if elapsed > suite.budget_s:
                row["skipped"] = f"time budget ({suite.budget_s:.0f} s) spent"
            else:
                try:
                    row.update(measure(step, ref))
                except (SystemExit, RuntimeError) as exc:  # a failed child names itself; the suite goes on
                    row["failed"] = str(exc).strip().splitlines()[-1][:300]
            results.append(row)
            log(_line(row))
    return {"schema": SCHEMA, "device": _device._device_name(suite.device), "suite": asdict(suite),
            "environment": _environment(), "seconds": round(time.perf_counter() - start, 1),
            "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results}


def _environment() -> dict[str, str]:
    import numpy
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "cuda": str(torch.version.cuda), "machine": platform.machine()}


def _line(row: dict[str, Any]) -> str:
    head = f"  {row['section']:<10} {row['method']:<10} {row['mode']:>5}"
    if row["section"] == "throughput":
        head += f" x{row['workers']}"
    if "skipped" in row or "failed" in row:
        return f"{head}: {row.get('skipped') or 'FAILED: ' + row['failed']}"
    if row["section"] == "throughput":
        return f"{head}: {row['units_per_hour']:.1f} units/hour"
    agree = f", J&F vs exact labels {100 * row['JF_agreement']:.2f}" if "JF_agreement" in row else ""
    return (f"{head}: {row['s_per_frame']:.4f} s/frame, {row['seconds']:.2f} s/unit (TTT {row['ttt_s']:.2f} s), "
            f"peak {row['peak_mb']:.0f} MiB, J&F {100 * row['JF']:.2f}{agree}")


# ------------------------------------------------------------------------------------------ outputs
def _cell(row: dict[str, Any] | None, fmt: Callable[[dict], str]) -> str:
    if row is None:
        return "—"
    if "skipped" in row:
        return "skipped (budget)"
    if "failed" in row:
        return "failed"
    return fmt(row)


def markdown(report: dict[str, Any]) -> str:
    """The Markdown tables of one suite run (what docs/performance.md carries)."""
    s = report["suite"]
    rows = {(r["section"], r["method"], r["mode"], r["workers"]): r for r in report["results"]}
    modes = s["modes"]
    protocol = ("released TTT protocol (10 rounds x 10 iterations)" if s["rounds"] is None
                else f"TTT {s['rounds']} round(s) x {s['iterations']} iteration(s)")
    out = [f"Device: **{report['device']}**; synthetic video {s['height']}x{s['width']}, {s['frames']} frames, "
           f"{s['objects']} objects, golden-init weights; SAM 2 at {s['sam2_image_size']} px; {protocol}; torch {report['environment']['torch']}, "
           f"measured {report['measured']} ({report['seconds']:.0f} s in all).", "",
           "| method | " + " | ".join(f"{m}: s/frame | {m}: s/unit | {m}: peak MiB | {m}: J&F" for m in modes)
           + (" | J&F fast − exact | fast vs exact labels |" if len(modes) == 2 else " |"),
           "|---|" + "---:|" * (4 * len(modes) + (2 if len(modes) == 2 else 0))]
    for section, name in UNIT_ROWS:
        cells = []
        for mode in modes:
            r = rows.get((section, name, mode, 0))
            cells += [_cell(r, lambda x: f"{x['s_per_frame']:.4f}"), _cell(r, lambda x: f"{x['seconds']:.2f}"),
                      _cell(r, lambda x: f"{x['peak_mb']:.0f}"), _cell(r, lambda x: f"{100 * x['JF']:.2f}")]
        if len(modes) == 2:
            e, f = rows.get((section, name, "exact", 0)), rows.get((section, name, "fast", 0))
            ok = e and f and "JF" in e and "JF" in f
            cells.append(f"{100 * (f['JF'] - e['JF']):+.2f}" if ok else "—")
            cells.append(f"{100 * f['JF_agreement']:.2f}" if ok and "JF_agreement" in f else "—")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    workers = [n for n in s["workers"] if n > 0]
    if workers:
        out += ["", "| units/hour per device (exact) | " + " | ".join(f"{n} worker(s)" for n in workers) + " |",
                "|---|" + "---:|" * len(workers)]
        for name in ("stcn", "stcn+mcc"):
            out.append(f"| {name} | " + " | ".join(
                _cell(rows.get(("throughput", name, "exact", n)), lambda x: f"{x['units_per_hour']:.1f}")
                for n in workers) + " |")
    return "\n".join(out) + "\n"


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The ``harness.run --estimate --figures`` file of one suite run (exact mode; fast mode beside it)."""
    from harness.estimate import FIGURES_SCHEMA, merge_figures

    s = report["suite"]
    rows = {(r["section"], r["method"], r["mode"], r["workers"]): r for r in report["results"]}
    data: dict[str, Any] | None = None
    for section, name in UNIT_ROWS:
        e = rows.get((section, name, "exact", 0))
        if not e or "seconds" not in e:
            continue
        entry: dict[str, Any] = {
            "device": report["device"], "mode": "exact",
            "video": {"height": s["height"], "width": s["width"], "frames": s["frames"], "objects": s["objects"]},
            "seconds_per_unit": e["seconds"], "peak_memory_mb": e["peak_mb"], "measured": report["measured"],
            "units_per_hour": {str(n): rows[("throughput", name, "exact", n)]["units_per_hour"]
                               for n in s["workers"] if "units_per_hour" in rows.get(("throughput", name, "exact", n), {})}}
        f = rows.get((section, name, "fast", 0))
        if f and "seconds" in f:
            entry["fast"] = {"seconds_per_unit": f["seconds"], "peak_memory_mb": f["peak_mb"],
                             "JF_minus_exact": f["JF"] - e["JF"]}
        data = merge_figures(data, name, entry)
    return data or {"schema": FIGURES_SCHEMA, "methods": {}}


def update_docs(md: str, doc: Path) -> None:
    """Replace the block between the gpu_suite markers of ``doc`` with ``md``."""
    from common.atomic import write_text_atomic

    text = doc.read_text()
    if DOCS_BEGIN not in text or DOCS_END not in text:
        raise SystemExit(f"{doc}: no {DOCS_BEGIN} ... {DOCS_END} block to update")
    head, rest = text.split(DOCS_BEGIN, 1)
    _, tail = rest.split(DOCS_END, 1)
    write_text_atomic(doc, f"{head}{DOCS_BEGIN}\n{md}{DOCS_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu_suite", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", help="cuda, cuda:N or cpu (default: cuda when torch sees a GPU, else cpu)")
    ap.add_argument("--tiny", action="store_true", help="48x80, 4 frames, TTT 1 x 1, workers 1 2: the CI size")
    ap.add_argument("--out", default="gpu_suite_out", help="folder for gpu_suite.json, gpu_suite.md and "
                    "figures.json (default gpu_suite_out/)")
    ap.add_argument("--budget-min", type=float, default=7.5, help="skip measurements that start after this many "
                    "minutes (default 7.5)")
    ap.add_argument("--modes", nargs="+", choices=["exact", "fast"], default=["exact", "fast"])
    ap.add_argument("--threads", type=int, help="torch threads per process (default: torch's)")
    ap.add_argument("--update-docs", metavar="MD", nargs="?", const="docs/performance.md",
                    help="rewrite the gpu_suite block of this Markdown file (default docs/performance.md)")
    args = ap.parse_args(argv)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU visible to torch")
    kw = {"modes": tuple(args.modes), "budget_s": 60 * args.budget_min, "threads": args.threads}
    suite = Suite.tiny(device, **kw) if args.tiny else Suite(device, **kw)
    print(f"GPU suite on {_device._device_name(device)}: {suite.height}x{suite.width}, {suite.frames} frames, "
          f"{suite.objects} objects; budget {args.budget_min:g} min", flush=True)
    report = run_suite(suite, log=lambda line: print(line, flush=True))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from common.atomic import write_text_atomic

    md = markdown(report)
    write_text_atomic(out / "gpu_suite.json", json.dumps(report, indent=1) + "\n")
    write_text_atomic(out / "gpu_suite.md", md)
    write_text_atomic(out / "figures.json", json.dumps(figures(report), indent=1) + "\n")
    if args.update_docs:
        update_docs(md, Path(args.update_docs))
    print(f"written: {out / 'gpu_suite.json'}, {out / 'gpu_suite.md'}, {out / 'figures.json'} "
          f"({report['seconds']:.0f} s)")
    failed = [r for r in report["results"] if "failed" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
