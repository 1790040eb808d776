"""SAM 2.1 speed and peak memory (Hiera-T and Hiera-B+, golden-init-v2 weights, 2 objects).

Seconds per tracked frame (median over frames 1..T-1; frame 0 is the annotated frame) and peak
memory (CPU: peak resident set size of a fresh child process; CUDA: ``max_memory_allocated``) of
our implementation, next to a reference measured in the same run: the official ``sam2`` package
cannot be imported here (it needs hydra and a source checkout), so the reference is OUR OWN PLAIN
VARIANT of the same network -- every attention computed as an explicit softmax(QK^T)V matrix
product instead of ``scaled_dot_product_attention``.  The output says which reference was used.

    python benchmarks/bench_sam2.py --models sam2.1_hiera_t sam2.1_hiera_b+ --frames 4 --size 240x432
    python benchmarks/bench_sam2.py --device cuda --amp          # bf16 autocast as the official script
"""
from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def synthetic_video(frames: int, height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two moving discs on a blocky random background."""
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


def _plain_sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kw):
    """softmax(Q K^T / sqrt(d)) V with the attention matrix materialised (the plain reference)."""
    s = (q.shape[-1] ** -0.5) if scale is None else scale
    return torch.softmax((q @ k.transpose(-2, -1)) * s, dim=-1) @ v


@contextlib.contextmanager
def plain_attention():
    """Swap the attention of our SAM 2 modules (Hiera, SAM heads, memory attention) for the plain one."""
    import models.sam2.heads
    import models.sam2.hiera

    modules = [models.sam2.hiera, models.sam2.heads]
    try:
        for m in modules:
            m.F = _PlainF()
        yield
    finally:
        for m in modules:
            m.F = F


class _PlainF:
    """``torch.nn.functional`` with scaled_dot_product_attention replaced."""

    def __getattr__(self, name):
        return _plain_sdpa if name == "scaled_dot_product_attention" else getattr(F, name)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def child(spec: dict) -> dict:
    """One measurement in this (fresh) process."""
    import models
    from models.sam2.inference import preprocess, track

    torch.set_num_threads(spec["threads"])
    device = spec["device"]
    vos = models.golden_init(models.load_model(spec["model"], device=device))
    frames, mask = synthetic_video(spec["frames"], *spec["size"])
    starts = [(0, mask == 1), (0, mask == 2)]
    ctx = plain_attention() if spec["impl"] == "plain" else contextlib.nullcontext()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    with ctx, torch.no_grad():
        _sync(device)
        t0 = time.perf_counter()
        for t, logits in track(vos, len(frames), lambda i: preprocess(frames[i], device), starts, mask.shape,
                               amp=spec["amp"]):
            logits.sum().item()
            _sync(device)
            now = time.perf_counter()
            times.append(now - t0)
            t0 = now
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"times": times, "peak_mb": peak}


def measure(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "_child", json.dumps(spec)], capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child failed for {spec}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "_child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["sam2.1_hiera_t", "sam2.1_hiera_b+"])
    p.add_argument("--frames", type=int, default=4, help="video length (frame 0 is not timed); default 4")
    p.add_argument("--size", default="240x432", help="HxW of the video (SAM 2 always runs at 1024x1024)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA only; ignored on CPU)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args(argv)
    if args.frames < 2:
        p.error("--frames must be at least 2")
    size = tuple(int(v) for v in args.size.lower().split("x"))
    print(f"device {args.device}, {args.threads} threads, {args.frames} frames of {size[0]}x{size[1]}, 2 objects, "
          f"amp={args.amp and args.device.startswith('cuda')}")
    print("reference: OUR OWN PLAIN VARIANT (explicit softmax(QK^T)V attention), not the official sam2 code "
          "(its package is not importable here)")
    print(f"{'model':<18}{'impl':<8}{'s/frame':>10}{'peak MB':>10}")
    for name in args.models:
        res = {}
        for impl in ("ours", "plain"):
            spec = {"model": name, "impl": impl, "frames": args.frames, "size": size, "device": args.device,
                    "amp": bool(args.amp), "threads": args.threads}
            r = measure(spec)
            res[impl] = (statistics.median(r["times"][1:]), r["peak_mb"])
            print(f"{name:<18}{impl:<8}{res[impl][0]:>10.2f}{res[impl][1]:>10.0f}", flush=True)
        print(f"{name:<18}{'ratio':<8}{res['plain'][0] / res['ours'][0]:>10.2f}{res['plain'][1] / res['ours'][1]:>10.2f}"
              "   (plain / ours; > 1: ours is faster / smaller)")


if __name__ == "__main__":
    main()
