"""Cutie speed and peak memory on this CPU: ours vs an official-style loop, measured in the same run.

For every size, each implementation runs in its own subprocess (so the peak resident memory VmHWM is
its own) on the same synthetic video (2 objects) with golden-init-v2 weights and the official
DAVIS-2017 settings:

* ``ours``: :func:`models.cutie.inference.iterate_video` (sparse top-k read: only the k kept weights
  per query are multiplied);
* ``official-style``: a re-enactment of the official ``MemoryManager.read`` algorithm on our network:
  the top-k weights are scattered into a dense (N x P) affinity matrix (``do_softmax(..., top_k)``) and
  the readout is one dense matmul, as ``memory_manager.py`` does.  The official package itself is not
  run here (it needs hydra/omegaconf and downloads ImageNet weights at construction); the output says so.

Frame 0 (mask only) is not timed; s/frame is the median over frames 1..T-1 (memory frames included).

    python benchmarks/bench_cutie.py --sizes 240x432 480x864 --frames 7 [--variant small] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

IMPLEMENTATIONS = ("ours", "official-style")


def synthetic_video(frames: int, height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two coloured discs moving over a blocky random background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = rng.integers(0, 255, (height // 8 + 1, width // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)[:height, :width]
    video = np.empty((frames, height, width, 3), np.uint8)
    mask = np.zeros((height, width), np.uint8)
    for t in range(frames):
        img = base.copy()
        for k, colour in enumerate(((230, 40, 40), (40, 40, 230))):
            cy = height * (0.35 + 0.3 * k) + 0.1 * height * np.sin(t / 7 + k)
            cx = width * (0.3 + 0.4 * k) + 0.1 * width * np.cos(t / 9 + k)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < (0.12 * min(height, width)) ** 2
            img[disc] = colour
            if t == 0:
                mask[disc] = k + 1
        video[t] = img
    return video, mask


def dense_topk_readout(sim: torch.Tensor, value: torch.Tensor, top_k: int, *, subtract_max: bool = True):
    """The official read: top-k weights (exp / sum, no max subtraction) scattered into a dense affinity
    matrix, then one dense matmul; usage = affinity summed over queries."""
    top, idx = torch.topk(sim, k=min(top_k, sim.shape[1]), dim=1)
    weights = top.exp()
    weights = weights / weights.sum(dim=1, keepdim=True)
    affinity = torch.zeros_like(sim).scatter_(1, idx, weights)   # (P, N)
    return value @ affinity.t(), affinity.sum(0)


def _child(args) -> None:
    """One implementation at one size; prints a JSON line."""
    from models import golden_init, load_model
    import models.cutie.memory as memory
    from models.cutie.inference import iterate_video

    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.lower().split("x"))
    frames, mask = synthetic_video(args.frames, h, w)
    model = golden_init(load_model("cutie", device="cpu", variant=args.variant), seed=0, s=1.2)
    if args.impl == "official-style":
        memory.topk_readout = dense_topk_readout
    times, start = [], time.perf_counter()
    with torch.inference_mode():
        for t, _, _, _ in iterate_video(model, frames, mask, model.config):
            now = time.perf_counter()
            if t > 0:
                times.append(now - start)
            start = now
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(json.dumps({"s_per_frame": statistics.median(times), "peak_rss_mb": hwm / 1024}))


def _run_child(impl: str, size: str, args) -> dict:
    cmd = [sys.executable, __file__, "_child", "--impl", impl, "--size", size, "--frames", str(args.frames),
           "--threads", str(args.threads), "--variant", args.variant]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("mode", nargs="?", default="speed", choices=["speed", "_child"], help=argparse.SUPPRESS)
    parser.add_argument("--sizes", nargs="+", default=["240x432", "480x864"], help="HxW sizes (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=7, help="frames per video (default: %(default)s; "
                        "frame 5 is a memory frame)")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs per size; best kept (default 1)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--variant", default="base", choices=["base", "small"])
    parser.add_argument("--impl", default="ours", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--size", default="240x432", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode == "_child":
        _child(args)
        return
    print(f"cutie-{args.variant} on CPU, float32, 2 objects, {args.frames} frames, official DAVIS-2017 settings, "
          f"torch threads={args.threads}; s/frame = median of frames 1..T-1, best of {args.repeats}; "
          "peak = VmHWM of a fresh process")
    print("reference 'official-style' = re-enactment of the official dense top-k read on our network in this run "
          "(the official package is not run here)")
    print(f"{'size':>9} | {'ours s/frame':>12} | {'official-style':>14} | {'ratio':>5} | "
          f"{'ours peak MB':>12} | {'official-style MB':>17}")
    for size in args.sizes:
        best = {impl: None for impl in IMPLEMENTATIONS}
        for _ in range(args.repeats):
            for impl in IMPLEMENTATIONS:
                r = _run_child(impl, size, args)
                if best[impl] is None or r["s_per_frame"] < best[impl]["s_per_frame"]:
                    best[impl] = r
        o, ref = best["ours"], best["official-style"]
        print(f"{size:>9} | {o['s_per_frame']:12.3f} | {ref['s_per_frame']:14.3f} | "
              f"{ref['s_per_frame'] / o['s_per_frame']:5.2f} | {o['peak_rss_mb']:12.0f} | {ref['peak_rss_mb']:17.0f}",
              flush=True)
    print("ratio = official-style / ours (> 1: ours is faster). Shared machine: order of magnitude only.")


if __name__ == "__main__":
    main()
