"""Benchmark: label-propagation seconds per 480p frame and peak memory, windowed vs dense.

The reference propagation (CRW ``test.py``) scores every query cell against all (m+1)·h·w
context cells and masks the radius afterwards.  This script times our windowed propagation
(``models.labelprop.propagate_soft``) and, in the same run, a dense implementation of the
reference's scheme (query chunks of 100 cells against the whole context, then the radius mask,
joint top-k, softmax), each in its own process so that peak memory is measured separately.

Setting: DAVIS 480p (854x480 -> 60x107 grid), 256 channels (CRW layer3), k 10, radius 12,
context 20, temperature 0.07.  "Steady state" means targets t > context, where the window holds
20 distinct frames; earlier targets are cheaper for us (repeated first-frame copies are scored
once).  Peak memory is the process's peak resident set (VmHWM) above its level after the
features were built (CUDA: peak allocated).

    python benchmarks/bench_labelprop.py                     # ~minutes on 2 CPU cores
    python benchmarks/bench_labelprop.py --frames 23 --reference-frames 2 --threads 2
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

GOLDEN_README_CASE_A_S = 19.0  # tests/golden/labelprop/README.md: reference test(), case A, loaded 2-core CPU


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _features(frames: int, channels: int, h: int, w: int, seed: int, device: str) -> torch.Tensor:
    """Smooth random feature maps drifting over time (cheap stand-in for encoder output)."""
    gen = torch.Generator().manual_seed(seed)
    base = F.interpolate(torch.randn(1, channels, h // 4 + 1, w // 4 + 1, generator=gen), size=(h, w),
                         mode="bilinear", align_corners=False)
    drift = torch.randn(frames, channels, 1, 1, generator=gen).cumsum(0) * 0.05
    noise = 0.3 * torch.randn(frames, channels, h, w, generator=gen)
    return (base + drift + noise).to(device)


def _first_soft(h: int, w: int, device: str) -> torch.Tensor:
    soft = torch.zeros(h, w, 3)
    soft[..., 0] = 1
    soft[h // 4:h // 2, w // 4:w // 2] = torch.tensor([0.0, 1.0, 0.0])
    soft[h // 2:3 * h // 4, w // 2:3 * w // 4] = torch.tensor([0.0, 0.0, 1.0])
    return soft.to(device)


def dense_reference_step(flat: torch.Tensor, soft: torch.Tensor, t: int, *, k: int, radius: float,
                         context: int, temperature: float, h: int, w: int, chunk: int = 100) -> torch.Tensor:
    """One target frame the way the reference does it: the full (m+1)·P affinity per query chunk."""
    from models.labelprop.propagation import context_frames

    slots = context_frames(t, context)
    keys = torch.cat([flat[s] for s in slots], 0)  # ((m+1) P, C)
    labels = torch.cat([soft[s] for s in slots], 0)
    rows = torch.arange(h, device=flat.device).repeat_interleave(w).float()
    cols = torch.arange(w, device=flat.device).repeat(h).float()
    out = torch.empty_like(soft[0])
    p = h * w
    for start in range(0, p, chunk):
        q = slice(start, start + chunk)
        scores = flat[t][q] @ keys.T  # (chunk, (m+1) P)
        dist = ((rows[q, None] - rows[None]) ** 2 + (cols[q, None] - cols[None]) ** 2).sqrt()
        far = (dist >= radius).float() * -1e10
        scores[:, p:] += far.repeat(1, len(slots) - 1)
        top, idx = (scores / temperature).topk(k, dim=1)
        weight = torch.softmax(top, dim=1)
        out[q] = torch.einsum("qk,qkl->ql", weight, labels[idx])
    return out


def _worker(kind: str, args: dict, queue) -> None:
    torch.set_num_threads(args["threads"])
    device = args["device"]
    h, w = args["grid"]
    feats = _features(args["frames"], args["channels"], h, w, args["seed"], device)
    first = _first_soft(h, w, device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    base = _peak_rss_mb()
    opts = dict(k=args["k"], radius=args["radius"], context=args["context"], temperature=args["temperature"])
    if kind == "windowed":
        from models.labelprop.propagation import propagate_soft

        timings: list[float] = []
        propagate_soft(feats, first, timings=timings, **opts)
        steady = timings[args["context"]:]  # timings[0] is target 1
        result = {"all_s_per_frame": float(np.mean(timings)),
                  "steady_s_per_frame": float(np.mean(steady)) if steady else None}
    else:
        flat = F.normalize(feats, dim=1).flatten(2).transpose(1, 2).contiguous()
        soft = torch.zeros(args["frames"], h * w, 3, device=device)
        soft[:] = first.reshape(h * w, 3)
        times = []
        t0_target = args["context"] + 1
        for t in range(t0_target, min(args["frames"], t0_target + args["reference_frames"])):
            started = time.perf_counter()
            soft[t] = dense_reference_step(flat, soft, t, h=h, w=w, **opts)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        result = {"steady_s_per_frame": float(np.mean(times))}
    peak = (torch.cuda.max_memory_allocated() / 2 ** 20) if device.startswith("cuda") else _peak_rss_mb() - base
    result["peak_mb"] = float(peak)
    queue.put(result)


def _run(kind: str, args: dict) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(kind, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def _golden_case_a(threads: int) -> float | None:
    """Seconds for the golden README's case A (10 frames, 30x54 grid), as in its timing table."""
    from pathlib import Path

    from models.labelprop import propagate

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from refdata import reference_path  # tests/golden or $DAVIS_C_SHARED

    path = reference_path("golden/labelprop/cases.npz")
    if not path.is_file():
        raise SystemExit(f"golden case A not found: {path} (tests/golden, or set DAVIS_C_SHARED)")
    torch.set_num_threads(threads)
    with np.load(path) as data:
        feats = torch.from_numpy(data["features"].astype(np.float32))
        labels = data["first_frame_labels"]
    times = []
    for _ in range(3):
        started = time.perf_counter()
        propagate(feats, labels, k=10, radius=12, context=20, temperature=0.07)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=23, help="video length (default 23: 2 steady-state targets)")
    parser.add_argument("--reference-frames", type=int, default=1, help="steady-state targets timed for the dense reference")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--radius", type=float, default=12)
    parser.add_argument("--context", type=int, default=20)
    parser.add_argument("--temperature", type=float, default=0.07)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-reference", action="store_true", help="time only our implementation")
    args = parser.parse_args(argv)
    grid = (-(-args.height // 8), -(-args.width // 8))
    cfg = dict(vars(args), grid=grid)
    print(f"grid {grid[0]}x{grid[1]}, C={args.channels}, k={args.k}, radius={args.radius}, "
          f"context={args.context}, {args.frames} frames, {args.threads} threads, {args.device}")
    ours = _run("windowed", cfg)
    print(f"windowed: {ours['all_s_per_frame']:.2f} s/frame over all targets, "
          f"{ours['steady_s_per_frame']:.2f} s/frame steady state, peak +{ours['peak_mb']:.0f} MB")
    report = {"windowed": ours}
    if not args.skip_reference:
        ref = _run("dense", cfg)
        report["dense_reference"] = ref
        print(f"dense reference scheme: {ref['steady_s_per_frame']:.2f} s/frame steady state, "
              f"peak +{ref['peak_mb']:.0f} MB")
        print(f"speed-up (steady state): {ref['steady_s_per_frame'] / ours['steady_s_per_frame']:.2f}x; "
              f"memory ratio: {ref['peak_mb'] / max(ours['peak_mb'], 1e-9):.2f}x")
    case_a = _golden_case_a(args.threads)
    if case_a is not None:
        report["golden_case_a_s"] = case_a
        print(f"golden case A (10 frames, 30x54): {case_a:.2f} s vs the README's reference ~{GOLDEN_README_CASE_A_S:.0f} s "
              f"(other machine load): ratio {GOLDEN_README_CASE_A_S / case_a:.1f}x")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
