"""Speed of the J&F evaluator against a straightforward implementation of the official algorithm.

Both are measured in the same run on the same synthetic DAVIS-like data at 480x854 and must give identical
numbers (asserted).  The reference does, per frame and object, what the official davis2017-evaluation code
does: boolean masks, IoU from full-frame sums, the ``_seg2bmap`` boundary map, two OpenCV dilations with the
scikit-image disk, products and sums (it skips the official float64 stacks, so it is, if anything, faster
than the official pipeline, which makes the ratio conservative).

    python benchmarks/bench_jf.py                      # 4 videos x 20 frames, 1-3 objects, workers 1 and 2
    python benchmarks/bench_jf.py --videos 8 --frames 30 --workers 1 2 4 8
    python benchmarks/bench_jf.py --cli-only --davis16 tests/data/real_davis16 \
        --official ~/src/davis2017-evaluation --vos-benchmark ~/src/vos-benchmark     # end to end, real frames

Printed: ms per evaluated frame-object for (a) the metrics on in-memory label maps and (b) the whole
pipeline including PNG decoding, for both implementations, their ratio; (c) the same pipeline re-enacting the
official code's data handling (float64 stacks of all masks, one-hot stacks), and the ``--workers`` speed-up.

End to end (``--official PATH``, a checkout of davisvideochallenge/davis2017-evaluation with pandas and scipy
installed; ``--vos-benchmark PATH``, a checkout of hkchengrex/vos-benchmark): each command line is run as a
user runs it -- a fresh interpreter, PNG decoding, CSV writing -- on the same results folder (a copy per tool,
as the official script writes its CSVs into it and re-uses them when present: they are removed before every
run), interleaved, ``--repeat`` times; printed are the median CPU-s (user + sys of the process and its
children) and wall seconds, the ratios, and the global J&F, J and F of every tool (asserted equal at the
precision each prints).  ``--davis16 ROOT`` runs it on real DAVIS-2016 videos (seen through a DAVIS-2017
layout, which is what the official script reads: 0/255 masks as object 1, ``ImageSets/2017/val.txt``).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage.morphology import disk

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from davis_c.datasets import Davis2017  # noqa: E402
from davis_c.masks import read_mask, write_mask  # noqa: E402
from davis_c.sample import make_sample  # noqa: E402
from harness.evaluate import evaluate_results  # noqa: E402
from harness.metrics import bound_radius, score_frame  # noqa: E402


# ------------------------------------------------------------------ reference: the official algorithm
def ref_seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel boundary map, written the way the official ``_seg2bmap`` builds it (zero-padded shifts)."""
    seg = seg.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def ref_j(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> float:
    gt, pred = gt.astype(bool), pred.astype(bool)
    keep = np.ones_like(gt) if void is None else ~void.astype(bool)
    inter = np.sum((gt & pred) & keep)
    union = np.sum((gt | pred) & keep)
    return 1.0 if union == 0 else inter / union


def ref_f(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None, bound_th: float = 0.008) -> float:
    keep = np.ones(gt.shape, bool) if void is None else ~void.astype(bool)
    r = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(pred.shape))
    bp = ref_seg2bmap(pred.astype(bool) & keep)
    bg = ref_seg2bmap(gt.astype(bool) & keep)
    kernel = disk(r).astype(np.uint8)
    dp = cv2.dilate(bp.astype(np.uint8), kernel)
    dg = cv2.dilate(bg.astype(np.uint8), kernel)
    n_p, n_g = np.sum(bp), np.sum(bg)
    if n_p == 0 and n_g > 0:
        precision, recall = 1, 0
    elif n_p > 0 and n_g == 0:
        precision, recall = 0, 1
    elif n_p == 0 and n_g == 0:
        precision, recall = 1, 1
    else:
        precision = np.sum(bp * dg) / float(n_p)
        recall = np.sum(bg * dp) / float(n_g)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def ref_stats(v: np.ndarray) -> tuple[float, float, float]:
    ids = (np.round(np.linspace(1, len(v), 5) + 1e-10) - 1).astype(np.int64)
    return (float(np.nanmean(v)), float(np.nanmean(v > 0.5)),
            float(np.nanmean(v[ids[0]:ids[1] + 1]) - np.nanmean(v[ids[3]:ids[4] + 1])))


def ref_score_frame(gt: np.ndarray, pred: np.ndarray, k_max: int) -> tuple[np.ndarray, np.ndarray]:
    j = np.array([ref_j(gt == k, pred == k) for k in range(1, k_max + 1)])
    f = np.array([ref_f(gt == k, pred == k) for k in range(1, k_max + 1)])
    return j, f


def ref_evaluate_folder(root: Path, results: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reference pipeline: for every evaluated frame read both PNGs with PIL, then score every object."""
    out = {}
    for video in Davis2017(root).videos:
        pngs = sorted((root / "Annotations/480p" / video).glob("*.png"))
        first = np.array(Image.open(pngs[0]))
        first[first == 255] = 0
        k = int(first.max())
        js, fs = [], []
        for p in pngs[1:-1]:
            gt = np.array(Image.open(p))
            pred = np.array(Image.open(results / video / p.name))
            j, f = ref_score_frame(gt, pred, k)
            js.append(j)
            fs.append(f)
        out[video] = (np.stack(js, 1), np.stack(fs, 1))
    return out


def ref_official_style_folder(root: Path, results: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The official pipeline's data handling re-enacted: float64 stacks of every annotation and prediction,
    one-hot object stacks built by broadcasting, J on (N, H, W) stacks, F frame by frame."""
    out = {}
    for video in Davis2017(root).videos:
        pngs = sorted((root / "Annotations/480p" / video).glob("*.png"))
        gt = np.zeros((len(pngs), *np.array(Image.open(pngs[0])).shape))
        for i, p in enumerate(pngs):
            gt[i] = np.array(Image.open(p))
        gt[gt == 255] = 0
        k = int(gt[0].max())
        gt_obj = (np.ones((k, *gt.shape)) * np.arange(1, k + 1)[:, None, None, None]) == gt[None]
        gt_obj = gt_obj[:, 1:-1]
        pred = np.zeros(gt_obj.shape[1:])
        for i, p in enumerate(pngs[1:-1]):
            pred[i] = np.array(Image.open(results / video / p.name))
        kp = int(pred.max())
        pred_obj = (np.ones((kp, *pred.shape)) * np.arange(1, kp + 1)[:, None, None, None]) == pred[None]
        if kp < k:
            pred_obj = np.concatenate([pred_obj, np.zeros((k - kp, *pred.shape), bool)])
        js, fs = np.zeros(gt_obj.shape[:2]), np.zeros(gt_obj.shape[:2])
        for o in range(k):
            inter = np.sum(gt_obj[o] & pred_obj[o], axis=(-2, -1))
            union = np.sum(gt_obj[o] | pred_obj[o], axis=(-2, -1))
            with np.errstate(divide="ignore", invalid="ignore"):
                js[o] = np.where(union == 0, 1.0, inter / union)
            fs[o] = [ref_f(gt_obj[o, t], pred_obj[o, t]) for t in range(gt_obj.shape[1])]
        out[video] = (js, fs)
    return out


# ------------------------------------------------------------------------------------------- data
def perturb(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible prediction: shifted, eroded/dilated objects plus a few false-positive blobs."""
    out = np.zeros_like(labels)
    for k in np.unique(labels):
        if k in (0, 255):
            continue
        m = (labels == k).astype(np.uint8)
        m = np.roll(m, tuple(rng.integers(-4, 5, 2)), axis=(0, 1))
        size = int(rng.integers(1, 6))
        kern = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        m = cv2.dilate(m, kern) if rng.random() < 0.5 else cv2.erode(m, kern)
        out[m > 0] = k
    h, w = labels.shape
    for _ in range(2):
        y, x = rng.integers(0, h), rng.integers(0, w)
        k = int(rng.integers(1, max(int(labels[labels != 255].max()), 1) + 1))
        cv2.circle(out, (int(x), int(y)), int(rng.integers(3, 15)), int(k), -1)
    return out


def write_predictions(root: Path, results: Path, seed: int) -> Path:
    """One perturbed prediction per annotation of the DAVIS-2017-layout ``root`` into ``results``."""
    rng = np.random.default_rng(seed)
    for video in Davis2017(root).videos:
        for png in sorted((root / "Annotations/480p" / video).glob("*.png")):
            write_mask(results / video / png.name, perturb(read_mask(png), rng))
    return results


def build_data(tmp: Path, videos: int, frames: int, seed: int) -> tuple[Path, Path]:
    root = make_sample(tmp / "DAVIS", videos=videos, frames=frames, height=480, width=854, seed=seed)
    return root, write_predictions(root, tmp / "results", seed)


def davis17_view(davis16: Path, tmp: Path) -> Path:
    """A DAVIS-2017-layout copy of a DAVIS-2016 root: annotations as palette PNGs with object 1 (the
    official script reads 2017 layouts only), frames linked, ``ImageSets/2017/val.txt`` listing every video."""
    from davis_c.datasets import open_dataset

    src = open_dataset("davis2016", davis16, None)
    root = tmp / "DAVIS17view"
    names = list(src.videos)
    for v in names:
        jpgs, pngs = src.frame_paths(v)
        (root / "JPEGImages/480p" / v).mkdir(parents=True, exist_ok=True)
        for j in jpgs:
            (root / "JPEGImages/480p" / v / j.name).symlink_to(j.resolve())
        for png in pngs:
            write_mask(root / "Annotations/480p" / v / png.name, (np.asarray(Image.open(png)) > 0).astype(np.uint8))
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("\n".join(names) + "\n")
    return root


def _run_cli(argv: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[float, float, str]:
    """(CPU-s of the child and its children, wall s, stdout) of one command line."""
    import resource
    import subprocess

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed:\n{out.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, out.stdout


def _global_csv(path: Path) -> tuple[float, float, float]:
    import csv

    with open(path, newline="") as fh:
        row = next(csv.DictReader(fh))
    return float(row["J&F-Mean"]), float(row["J-Mean"]), float(row["F-Mean"])


def cli_race(root: Path, results: Path, tmp: Path, official: Path | None, vosb: Path | None, workers: int,
             repeat: int) -> None:
    """The evaluators end to end, as command lines (see the module docstring)."""
    import statistics

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _official import child_env, commit_of

    copies = {}
    for name, given in (("ours", True), ("official", official), ("vos-benchmark", vosb)):
        if given:
            copies[name] = tmp / f"results_{name}"
            shutil.copytree(results, copies[name])
    out_ours = tmp / "csv_ours"
    cmds = {"ours": ([sys.executable, "-m", "harness.evaluate", "--davis", str(root), "--results",
                      str(copies["ours"]), "--out", str(out_ours), "--quiet", "--workers", str(workers)], REPO, None)}
    if official:
        cmds["official"] = ([sys.executable, str(official / "evaluation_method.py"), "--task", "semi-supervised",
                             "--davis_path", str(root), "--results_path", str(copies["official"])], official,
                            child_env(official))
    if vosb:
        cmds["vos-benchmark"] = ([sys.executable, str(vosb / "benchmark.py"), "-g", str(root / "Annotations/480p"),
                                  "-m", str(copies["vos-benchmark"]), "-n", str(workers)], vosb, child_env(vosb))
    runs: dict[str, list[tuple[float, float]]] = {n: [] for n in cmds}
    printed: dict[str, str] = {}
    for _ in range(repeat):
        for name, (argv, cwd, env) in cmds.items():
            for stale in copies[name].glob("*.csv"):  # the official script re-uses CSVs it finds
                stale.unlink()
            cpu, wall, printed[name] = _run_cli(argv, cwd, env)
            runs[name].append((cpu, wall))
    ours = _global_csv(out_ours / "global_results-val.csv")
    numbers = {"ours": f"J&F {ours[0]:.3f} J {ours[1]:.3f} F {ours[2]:.3f}"}
    if official:
        theirs = _global_csv(copies["official"] / "global_results-val.csv")
        assert all(abs(a - b) < 5e-4 for a, b in zip(ours, theirs)), f"official CSV {theirs} != ours {ours}"
        numbers["official"] = f"J&F {theirs[0]:.3f} J {theirs[1]:.3f} F {theirs[2]:.3f} (its CSV, 3 decimals)"
    if vosb:
        import re

        m = re.search(r"Global score: J&F: ([\d.]+) J: ([\d.]+) F: ([\d.]+)", printed["vos-benchmark"])
        theirs = tuple(float(v) for v in m.groups())
        assert all(abs(100 * a - b) < 0.051 for a, b in zip(ours, theirs)), f"vos-benchmark {theirs} != ours {ours}"
        numbers["vos-benchmark"] = f"J&F {theirs[0]:.1f} J {theirs[1]:.1f} F {theirs[2]:.1f} (printed, 1 decimal, x100)"
    med = {n: (statistics.median(c for c, _ in r), statistics.median(w for _, w in r)) for n, r in runs.items()}
    print(f"end to end, command lines, --workers {workers} (ours and vos-benchmark), median of {repeat} interleaved "
          "runs:")
    for name, (cpu, wall) in med.items():
        ref = {"official": official, "vos-benchmark": vosb}.get(name)
        ratio = "" if name == "ours" else f" -> ours {cpu / med['ours'][0]:.1f}x less CPU, {wall / med['ours'][1]:.1f}x wall"
        print(f"  {name:<14} {cpu:6.2f} CPU-s {wall:6.2f} s wall{ratio}; {numbers[name]}"
              + (f"; commit {commit_of(ref)}" if ref else ""))
    print("  (identical numbers asserted at the precision each tool prints)")


def race(fns: dict, repeat: int) -> tuple[dict, dict]:
    """Best-of-``repeat`` wall time of each function, the functions interleaved within every round so that
    load changes on a shared machine hit all of them alike.  Returns (seconds, last value) per name."""
    best = {name: float("inf") for name in fns}
    value = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            value[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best, value


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="best of N timings (default 3)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--official", type=Path, metavar="PATH", help="checkout of davisvideochallenge/"
                    "davis2017-evaluation: its evaluation_method.py is timed end to end next to ours")
    ap.add_argument("--vos-benchmark", type=Path, metavar="PATH", help="checkout of hkchengrex/vos-benchmark: its "
                    "benchmark.py is timed end to end next to ours (same process count)")
    ap.add_argument("--davis16", type=Path, metavar="ROOT", help="real DAVIS-2016 videos (e.g. tests/data/real_davis16) "
                    "instead of the synthetic sample, seen through a DAVIS-2017 layout")
    ap.add_argument("--cli-only", action="store_true", help="only the end-to-end command-line comparison")
    args = ap.parse_args(argv)
    for opt, marker in (("official", "evaluation_method.py"), ("vos_benchmark", "vos_benchmark/benchmark.py")):
        path = getattr(args, opt)
        if path is not None and not (path / marker).is_file():
            ap.error(f"--{opt.replace('_', '-')} {path}: {marker} not found there")
    tmp = Path(tempfile.mkdtemp(prefix="bench_jf_"))
    try:
        if args.davis16:
            root = davis17_view(args.davis16, tmp)
            results = write_predictions(root, tmp / "results", args.seed)
        else:
            root, results = build_data(tmp, args.videos, args.frames, args.seed)
        if args.official or args.vos_benchmark or args.cli_only:
            cli_race(root, results, tmp, args.official and args.official.resolve(),
                     args.vos_benchmark and args.vos_benchmark.resolve(), args.workers[0], args.repeat)
            if args.cli_only:
                return 0
        ds = Davis2017(root)
        # in-memory label maps of the evaluated frames
        data, pngs = [], []
        for video in ds.videos:
            video_pngs = sorted((root / "Annotations/480p" / video).glob("*.png"))
            k = int(read_mask(video_pngs[0]).max())
            for p in video_pngs[1:-1]:
                data.append((read_mask(p), read_mask(results / video / p.name), k))
                pngs.append((p, results / video / p.name))
        n_fo = sum(d[2] for d in data)
        radius = bound_radius((480, 854))
        print(f"data: {len(ds)} videos, {len(data)} evaluated 480x854 frames, {n_fo} frame-objects "
              f"(radius {radius:.0f} px); cpu count {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
        score_frame(*data[0][:2], tuple(range(1, data[0][2] + 1)), radius)  # compile / warm up

        t, v = race({"ours": lambda: [score_frame(g, p, tuple(range(1, k + 1)), radius) for g, p, k in data],
                     "ref": lambda: [ref_score_frame(g, p, k) for g, p, k in data]}, args.repeat)
        for (j1, f1), (j2, f2) in zip(v["ours"], v["ref"]):
            assert np.array_equal(j1, j2) and np.array_equal(f1, f2), "metrics differ from the reference"
        print(f"metrics only   : ours {1e3 * t['ours'] / n_fo:7.3f} ms, reference {1e3 * t['ref'] / n_fo:7.3f} ms "
              f"per frame-object -> {t['ref'] / t['ours']:5.1f}x faster  (identical numbers: asserted)")

        t, v = race({"ours": lambda: evaluate_results(root, results, progress=False),
                     "ref": lambda: ref_evaluate_folder(root, results),
                     "official": lambda: ref_official_style_folder(root, results)}, args.repeat)
        for s in v["ours"]:
            for other in ("ref", "official"):
                rj, rf = v[other][s.name]
                assert np.array_equal(s.J, rj) and np.array_equal(s.F, rf), f"{s.name}: differs from {other}"
            for k in range(len(s.object_ids)):
                assert np.array_equal(s.stats[k], ref_stats(v["ref"][s.name][0][k]) + ref_stats(v["ref"][s.name][1][k]))
        print(f"with PNG decode: ours {1e3 * t['ours'] / n_fo:7.3f} ms, reference {1e3 * t['ref'] / n_fo:7.3f} ms "
              f"per frame-object -> {t['ref'] / t['ours']:5.1f}x faster  (identical numbers: asserted)")
        print(f"official-style : {1e3 * t['official'] / n_fo:7.3f} ms per frame-object (its float64 stacks, PNG "
              f"decode included) -> ours {t['official'] / t['ours']:5.1f}x faster  (identical numbers: asserted)")
        t_png, _ = race({"png": lambda: [(np.array(Image.open(g)), np.array(Image.open(p))) for g, p in pngs]},
                        args.repeat)
        print(f"PNG decoding alone (GT + prediction, PIL): {1e3 * t_png['png'] / n_fo:7.3f} ms per frame-object "
              "(the floor for any evaluator reading PNGs)")

        t, _ = race({w: (lambda w=w: evaluate_results(root, results, workers=w, progress=False))
                     for w in args.workers}, args.repeat)
        base = t[args.workers[0]]
        for w in args.workers:
            t_w = t[w]
            print(f"--workers {w:2d}   : {t_w:6.3f} s, {1e3 * t_w / n_fo:7.3f} ms per frame-object, "
                  f"speed-up {base / t_w:4.2f}x over --workers {args.workers[0]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
