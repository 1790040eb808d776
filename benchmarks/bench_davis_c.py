"""DAVIS-C build speed at DAVIS size (480x854), against the official generator.

    python benchmarks/bench_davis_c.py [--videos 2 --frames 8] [--workers 2] [--official-glass 3 4 5]
    python benchmarks/bench_davis_c.py --davis16 tests/data/real_davis16 --videos 4 --frames 10   # real frames

Prints, per corruption and strength, our wall and CPU seconds per frame (corruption + the JPEG encoding
the build does; CPU includes ffmpeg children), frame-variants per second, and the ratio of the official
per-frame time to our CPU time.  The official time is measured in this run (CPU) where the official code can
run here (glass_blur's pure-Python loop, scikit-image brightness/saturate), otherwise it is the golden
README's reference timing (``tests/golden/davis_c/timings.json``, official env, + 5 ms for cv2.imwrite).
CPU time is reported because the machine is shared: wall time grows with other jobs' load.  cartoon is also
run with OpenCV's own ``cv2.pyrMeanShiftFiltering`` (the implementation before the compiled mean shift) on the
same frames, asserting identical output, and the ratio is printed.  Then a whole 10 x 3 build of the frames
with ``--workers`` processes and the projected time of the full DAVIS-C (1999 frames x 30 variants), from its
wall time and from its CPU time spread over the cores.

Frames: a synthetic 480x854 sample by default; ``--davis16 DIR`` takes the first ``--frames`` frames of
``--videos`` real videos of a DAVIS-2016 folder (e.g. ``tests/data/real_davis16``; its 0/255 masks are
written as DAVIS-2017 label 1 into a temporary DAVIS-2017 layout), ``--davis DIR`` those of a DAVIS-2017 root.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import skimage.color as skc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # refdata: tests/golden or $DAVIS_C_SHARED

import cv2  # noqa: E402

from davis_c.build import build  # noqa: E402
from davis_c.corruptions.cartoon import cartoon  # noqa: E402
from davis_c.corruptions import STRENGTHS, corrupt, names  # noqa: E402
from davis_c.corruptions.glass import glass_blur_reference  # noqa: E402
from davis_c.datasets import Davis2017  # noqa: E402
from davis_c.sample import make_sample  # noqa: E402
from davis_c.store import encode_frame  # noqa: E402
from refdata import reference_path  # noqa: E402

FULL = 1999 * 30
TIMINGS = reference_path("golden/davis_c/timings.json")


def reference_timings(path: Path = TIMINGS) -> tuple[dict, dict]:
    """(official_env seconds per frame by "<name>_s<sev>", crf seconds per frame by severity) from the
    golden timings; a missing file or number stops the benchmark instead of printing a made-up ratio."""
    if not path.is_file():
        raise SystemExit(f"reference timings not found: {path} (tests/golden, or set DAVIS_C_SHARED)")
    data = json.loads(path.read_text())
    try:
        official = data["official_env"]
        crf = {sev: data["crf_pipeline_per_frame_30frame_clip"][f"s{sev}"] for sev in STRENGTHS.values()}
        official["imwrite_jpeg95_float_input"]
    except KeyError as err:
        raise SystemExit(f"{path}: reference number {err} missing") from None
    return official, crf


official_glass = glass_blur_reference


def official_hsv(frame: np.ndarray, name: str, severity: int) -> np.ndarray:
    """scikit-image array version of brightness/saturate (the official functions' arithmetic)."""
    x = skc.rgb2hsv(frame[..., ::-1] / 255.0)
    if name == "brightness":
        x[..., 2] = np.clip(x[..., 2] + (0.1, 0.2, 0.3, 0.4, 0.5)[severity - 1], 0, 1)
    else:
        a, b = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))[severity - 1]
        x[..., 1] = np.clip(x[..., 1] * a + b, 0, 1)
    return np.clip(skc.hsv2rgb(x), 0, 1) * 255


def real_subset(src: Path, dst: Path, videos: int, frames: int, davis16: bool) -> Path:
    """A DAVIS-2017 layout with the first ``frames`` frames of the first ``videos`` videos of ``src``
    (symlinked JPEGs; DAVIS-2016 0/255 masks become label 1)."""
    from davis_c.masks import read_mask, write_mask

    names = sorted(p.name for p in (src / "JPEGImages" / "480p").iterdir() if p.is_dir())[:videos]
    for v in names:
        for sub in ("JPEGImages", "Annotations"):
            (dst / sub / "480p" / v).mkdir(parents=True)
        for jpg in sorted((src / "JPEGImages" / "480p" / v).glob("*.jpg"))[:frames]:
            (dst / "JPEGImages" / "480p" / v / jpg.name).symlink_to(jpg.resolve())
            png = src / "Annotations" / "480p" / v / f"{jpg.stem}.png"
            labels = read_mask(png)
            write_mask(dst / "Annotations" / "480p" / v / png.name,
                       (labels > 127).astype(np.uint8) if davis16 else labels)
    (dst / "ImageSets" / "2017").mkdir(parents=True)
    (dst / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{v}\n" for v in names))
    return dst


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (ffmpeg), robust to other jobs' load."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=2)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--official-glass", type=int, nargs="*", default=[3, 4, 5],
                   help="severities at which to time the official glass loop (6-10 s each)")
    p.add_argument("--davis16", type=Path, metavar="DIR", help="real frames from a DAVIS-2016 folder")
    p.add_argument("--davis", type=Path, metavar="DIR", help="real frames from a DAVIS-2017 root")
    p.add_argument("--no-build", action="store_true", help="skip the whole-build measurement")
    args = p.parse_args(argv)
    ref, crf_ref = reference_timings()
    imwrite = ref["imwrite_jpeg95_float_input"]

    with tempfile.TemporaryDirectory(prefix="bench_davis_c_") as tmp:
        real = args.davis16 or args.davis
        if real:
            root = real_subset(real, Path(tmp) / "DAVIS", args.videos, args.frames, davis16=bool(args.davis16))
        else:
            root = make_sample(Path(tmp) / "DAVIS", videos=args.videos, frames=args.frames, height=480, width=854)
        ds = Davis2017(root)
        videos = [ds.load(v) for v in ds.videos]
        n = sum(len(v) for v in videos)
        corrupt(videos[0].frames[:2], "glass_blur", 3)  # warm-up (numba cache load)
        cartoon(videos[0].frames[0][:40, :60], 5)
        what = f"real frames of {real} ({', '.join(ds.videos)})" if real else "synthetic sample"
        print(f"{what}: {len(videos)} videos x {args.frames} frames at "
              f"{videos[0].frames.shape[2]}x{videos[0].frames.shape[1]} ({n} frames)")
        print(f"CPU: {cpu_name()}, {os.cpu_count()} cores, 1-min load average {os.getloadavg()[0]:.1f}\n")
        print(f"{'corruption':16s} {'sev':>3s} {'ours s/frame':>12s} {'CPU s/frame':>11s} {'frames/s':>9s} "
              f"{'official s/frame':>16s} {'ratio':>7s}  reference")
        total_ours = total_cpu = total_before = 0.0
        for name in names():
            if name.startswith("style"):
                continue
            for sev in STRENGTHS.values():
                t0, c0 = time.perf_counter(), cpu_seconds()
                outs = []
                for v in videos:
                    out = corrupt(v.frames, name, sev, seed=0)
                    outs.append(out)
                    if name != "crf_compression":  # crf stores ffmpeg's own JPEG files
                        for f in out:
                            encode_frame(f, "jpeg")
                ours = (time.perf_counter() - t0) / n
                cpu = (cpu_seconds() - c0) / n
                total_ours += ours
                total_cpu += cpu
                total_before += cpu
                source = "golden timings.json"
                official = ref.get(f"{name}_s{sev}")
                if name == "crf_compression":
                    official = crf_ref[sev]
                    source = "golden timings.json (ffmpeg pipeline)"
                elif name == "glass_blur" and sev in args.official_glass:
                    np.random.seed(0)
                    c1 = cpu_seconds()
                    official_glass(videos[0].frames[0], sev)
                    official = cpu_seconds() - c1
                    source = "official loop, this run (CPU)"
                elif name == "cartoon":  # OpenCV's mean shift, on every frame: same bytes, CPU time
                    official = 0.0
                    for v, ours_v in zip(videos, outs):
                        c1 = cpu_seconds()
                        ref_v = np.stack([cartoon(f, sev, mean_shift=cv2.pyrMeanShiftFiltering) for f in v.frames])
                        official += cpu_seconds() - c1
                        assert np.array_equal(ours_v, ref_v), "cartoon: compiled mean shift differs from OpenCV"
                    official /= n
                    total_before += official + imwrite - cpu
                    source = "cv2.pyrMeanShiftFiltering, this run (CPU), identical bytes"
                elif name in ("brightness", "saturate"):
                    c1 = cpu_seconds()
                    for f in videos[0].frames[:4]:
                        official_hsv(f, name, sev)
                    official = (cpu_seconds() - c1) / 4
                    source = "scikit-image, this run (CPU)"
                if official is None:
                    raise SystemExit(f"{TIMINGS}: no reference time for {name}_s{sev} in official_env")
                if name != "crf_compression":
                    official += imwrite
                ratio = f"{official / cpu:7.1f}" if official else "    n/a"  # official / our CPU time
                print(f"{name:16s} {sev:3d} {ours:12.4f} {cpu:11.4f} {1 / ours:9.1f} "
                      f"{official or float('nan'):16.4f} {ratio}  {source}")
        print(f"\nsum over the 30 variants per frame: {total_ours:.3f} s wall, {total_cpu:.3f} s CPU "
              f"-> full DAVIS-C needs {total_cpu * 1999 / 60:.1f} CPU-min, i.e. >= "
              f"{total_cpu * 1999 / 120:.1f} min on 2 idle cores")
        print(f"the same with OpenCV's mean shift in cartoon (before): {total_before:.3f} s CPU per frame -> "
              f"{total_before * 1999 / 120:.1f} min on 2 idle cores ({total_before / total_cpu:.2f}x)\n")

        if args.no_build:
            return 0
        import davis_c.build as B

        bars: list = []

        class Timed(B.Progress):  # the build's bars, hidden, with the time of every update
            def __init__(self, *a, **kw):
                kw["enabled"] = False
                super().__init__(*a, **kw)
                self.times = [self.clock()]
                bars.append(self)

            def update(self, n=1):
                if n > 0:
                    self.times.append(self.clock())
                super().update(n)

        B.Progress = Timed
        t0, c0 = time.perf_counter(), cpu_seconds()
        s = build(root, Path(tmp) / "davis_c.h5", workers=args.workers, progress=True, log=lambda m: None)
        cpu = cpu_seconds() - c0
        wall = time.perf_counter() - t0
        bar = max(bars, key=lambda b: b.total)  # the frame-variants bar (the clean pass has its own)
        gaps = np.diff(bar.times)
        print(f"progress: the frame-variants bar moved {len(gaps)} times in {bar.times[-1] - bar.times[0]:.1f} s; "
              f"longest wait {gaps.max():.2f} s, 99th percentile {np.percentile(gaps, 99):.2f} s, "
              f"median {np.median(gaps):.3f} s")
        load = os.getloadavg()[0]
        rate = s["frame_variants"] / wall
        print(f"whole build ({len(s['corruptions'])} corruptions x {len(s['strengths'])} strengths, "
              f"--workers {args.workers}, {os.cpu_count()} CPUs): {s['frame_variants']} frame-variants in "
              f"{wall:.1f} s = {rate:.1f} frame-variants/s (1-min load average {load:.1f})")
        print(f"projected full DAVIS-C (1999 frames x 30 variants = {FULL}): {FULL / rate / 60:.1f} min "
              f"from wall time; {FULL * cpu / s['frame_variants'] / min(args.workers, os.cpu_count()) / 60:.1f} min "
              f"from CPU time ({cpu:.1f} CPU-s) on {min(args.workers, os.cpu_count())} idle cores (goal <= 25 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
