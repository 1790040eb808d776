"""Cutie speed and peak memory on this CPU: ours vs the official code (``--official PATH``) or an
official-style loop, measured in the same run.

For every size, each implementation runs in its own subprocess (so the peak resident memory VmHWM is
its own) on the same synthetic video (2 objects) with golden-init-v2 weights and the official
DAVIS-2017 settings:

* ``ours``: :func:`models.cutie.inference.iterate_video` (sparse top-k read: only the k kept weights
  per query are multiplied);
* ``official-style``: a re-enactment of the official ``MemoryManager.read`` algorithm on our network:
  the top-k weights are scattered into a dense (N x P) affinity matrix (``do_softmax(..., top_k)``) and
  the readout is one dense matmul, as ``memory_manager.py`` does (our stand-in, used without ``--official``);
* ``official`` (``--official PATH``, a checkout of hkchengrex/Cutie with ``hydra-core`` installed): the
  official ``CUTIE`` network and ``InferenceCore`` with ``eval_config.yaml`` (d17-val settings), given our
  golden-init weights (every key checked equal after ``load_weights``).  Its constructor would download
  ImageNet ResNet weights that the checkpoint overwrites anyway, so the child builds the ResNet with
  ``pretrained=False``; nothing else of the official code is changed.  Frames go in as tensors (its
  dataset loader, which resizes to 480 px, is not timed); the label maps are compared.

Frame 0 (mask only) is not timed; s/frame is the median over frames 1..T-1 (memory frames included).

    python benchmarks/bench_cutie.py --sizes 240x432 480x864 --frames 7 [--variant small] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _official import (add_json_argument, add_official_argument, agreement, checkout, child_env,  # noqa: E402
                       commit_of, record, reference_line)

IMPLEMENTATIONS = ("ours", "official-style", "official")
MARKER = "cutie/inference/inference_core.py"


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
    """One implementation at one size; prints a JSON line (and saves its label maps to --labels-out)."""
    from models import golden_init, load_model
    import models.cutie.memory as memory
    from models.cutie.inference import iterate_video

    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.lower().split("x"))
    frames, mask = synthetic_video(args.frames, h, w)
    model = golden_init(load_model("cutie", device="cpu", variant=args.variant), seed=0, s=1.2)
    if args.impl == "official":
        return _official_child(args, model, frames, mask)
    if args.impl == "official-style":
        memory.topk_readout = dense_topk_readout
    times, labels, start = [], [], time.perf_counter()
    with torch.inference_mode():
        for t, prob, order, _ in iterate_video(model, frames, mask, model.config):
            ids = torch.tensor([0, *order])
            labels.append(ids[prob.argmax(0).cpu()].numpy().astype(np.uint8))
            now = time.perf_counter()
            if t > 0:
                times.append(now - start)
            start = now
    _finish(args, times, labels)


def _finish(args, times: list[float], labels: list[np.ndarray]) -> None:
    if args.labels_out:
        np.save(args.labels_out, np.stack(labels))
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(json.dumps({"s_per_frame": statistics.median(times), "peak_rss_mb": hwm / 1024}))


def _official_child(args, ours, frames: np.ndarray, mask: np.ndarray) -> None:
    """The official network and InferenceCore (the checkout is first on sys.path) on our weights."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    import cutie.model.utils.resnet as official_resnet
    from cutie.inference.inference_core import InferenceCore
    from cutie.inference.utils.args_utils import get_dataset_cfg
    from cutie.model.cutie import CUTIE

    for name in ("resnet18", "resnet50"):  # no ImageNet download: the checkpoint below sets every weight
        build = getattr(official_resnet, name)
        setattr(official_resnet, name, lambda *a, _build=build, **k: _build(*a, **{**k, "pretrained": False}))
    with initialize_config_dir(version_base="1.3.2", config_dir=str(Path(args.official) / "cutie" / "config"),
                               job_name="bench_cutie"):
        cfg = compose(config_name="eval_config", overrides=[f"model={args.variant}"])
    with open_dict(cfg):
        get_dataset_cfg(cfg)
    net = CUTIE(cfg).eval()
    weights = {k: v.clone() for k, v in ours.state_dict().items()}
    net.load_weights(weights)
    theirs = net.state_dict()
    wrong = sorted(set(weights) ^ set(theirs)) + [k for k in weights if k in theirs and not torch.equal(weights[k], theirs[k])]
    if wrong:
        raise SystemExit(f"the official network did not take our weights: {wrong[:5]}")
    del ours
    core = InferenceCore(net, cfg=cfg)
    first = torch.from_numpy(mask.astype(np.int64))
    times, labels, start = [], [], time.perf_counter()
    with torch.inference_mode():
        for t in range(len(frames)):
            image = torch.from_numpy(frames[t]).permute(2, 0, 1).float().div(255)
            prob = core.step(image, first if t == 0 else None, [1, 2] if t == 0 else None, end=t == len(frames) - 1)
            ids = torch.tensor([0, *[core.object_manager.tmp_id_to_obj[i].id
                                     for i in range(1, prob.shape[0])]])
            labels.append(ids[prob.argmax(0)].numpy().astype(np.uint8))
            now = time.perf_counter()
            if t > 0:
                times.append(now - start)
            start = now
    _finish(args, times, labels)


def _run_child(impl: str, size: str, args, labels_out: str) -> dict:
    cmd = [sys.executable, __file__, "_child", "--impl", impl, "--size", size, "--frames", str(args.frames),
           "--threads", str(args.threads), "--variant", args.variant, "--labels-out", labels_out]
    official = args.official if impl == "official" else None
    if official:
        cmd += ["--official", str(official)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=child_env(official))
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {impl} at {size} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("mode", nargs="?", default="speed", choices=["speed", "_child"], help=argparse.SUPPRESS)
    parser.add_argument("--sizes", nargs="+", default=["240x432", "480x864"], help="HxW sizes (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=7, help="frames per video (default: %(default)s; "
                        "frame 5 is a memory frame)")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs per size; median kept (default 1)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--variant", default="base", choices=["base", "small"])
    add_official_argument(parser, "hkchengrex/Cutie", MARKER)
    add_json_argument(parser)
    parser.add_argument("--impl", default="ours", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--size", default="240x432", help=argparse.SUPPRESS)
    parser.add_argument("--labels-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode == "_child":
        _child(args)
        return
    args.official = checkout(args.official, MARKER, parser)
    ref = "official" if args.official else "official-style"
    print(f"cutie-{args.variant} on CPU, float32, 2 objects, {args.frames} frames, official DAVIS-2017 settings, "
          f"torch threads={args.threads}; s/frame = median of frames 1..T-1, median of {args.repeats} alternating "
          "run(s); peak = VmHWM of a fresh process")
    print(reference_line(args.official, "official-style: the official dense top-k read re-enacted on our network"))
    print(f"{'size':>9} | {'ours s/frame':>12} | {ref + ' s/frame':>22} | {'ratio':>5} | "
          f"{'ours peak MB':>12} | {ref + ' MB':>17} | agreement")
    with tempfile.TemporaryDirectory(prefix="bench_cutie_") as tmp:
        for size in args.sizes:
            runs: dict[str, list[dict]] = {"ours": [], ref: []}
            for _ in range(args.repeats):
                for impl in ("ours", ref):
                    runs[impl].append(_run_child(impl, size, args, str(Path(tmp) / f"{impl}.npy")))
            o, r = ({k: statistics.median(x[k] for x in runs[impl]) for k in ("s_per_frame", "peak_rss_mb")}
                    for impl in ("ours", ref))
            a = agreement(np.load(Path(tmp) / "ours.npy"), np.load(Path(tmp) / f"{ref}.npy"))
            print(f"{size:>9} | {o['s_per_frame']:12.3f} | {r['s_per_frame']:22.3f} | "
                  f"{r['s_per_frame'] / o['s_per_frame']:5.2f} | {o['peak_rss_mb']:12.0f} | {r['peak_rss_mb']:17.0f} | "
                  f"{100 * a['equal_fraction']:.4f} % equal ({a['pixels_differ']} px differ)", flush=True)
            record(args.json, model=f"cutie-{args.variant}", threads=args.threads, size=size, frames=args.frames,
                   ours_s=o["s_per_frame"], reference_s=r["s_per_frame"], ratio=r["s_per_frame"] / o["s_per_frame"],
                   ours_mb=o["peak_rss_mb"], reference_mb=r["peak_rss_mb"], reference=ref,
                   commit=commit_of(args.official) if args.official else None,
                   equal_fraction=a["equal_fraction"], pixels_differ=a["pixels_differ"])
    print(f"ratio = {ref} / ours (> 1: ours is faster). Shared machine: order of magnitude only.")


if __name__ == "__main__":
    main()
