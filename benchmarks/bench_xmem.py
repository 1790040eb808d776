"""XMem speed and memory on this CPU.

``speed``: seconds per frame of our XMem (golden-init weights, eval.py defaults, 2 objects) at the
given sizes, next to a reference measured in the same run: with ``--official DIR`` the official code
itself (a checkout of github.com/hkchengrex/XMem) on the same weights and frames, otherwise (the
default, said so in the output) OUR network with the official dense top-k read (the k weights
scattered into an (N x P) affinity matrix, then one dense matmul).  The official rough timings of ``tests/golden/xmem/meta.json`` are
shown for context.  Frame 0 (mask only) is not timed; the figure is the median over frames
1..T-1 (memory frames included, as in a real video).

``memory``: peak resident memory and memory-element counts over a long synthetic video (default
300 frames), with long-term memory on (bounded) and, for contrast, off (working memory grows).

    python benchmarks/bench_xmem.py speed --sizes 240x432 480x864 --frames 7 [--official XMem/]
    python benchmarks/bench_xmem.py memory --frames 300 --size 120x216
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
sys.path.insert(0, str(REPO / "tests"))  # refdata: tests/golden or $DAVIS_C_SHARED
from refdata import reference_path  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _official import add_json_argument, agreement, commit_of, record, reference_line  # noqa: E402

META = reference_path("golden/xmem/meta.json")


def synthetic_video(frames: int, height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Smooth moving blobs on a textured background, two objects."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = rng.integers(0, 255, (height // 8 + 1, width // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)[:height, :width]
    video = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        img = base.copy()
        for k, colour in enumerate(((230, 40, 40), (40, 40, 230))):
            cy = height * (0.35 + 0.3 * k) + 0.1 * height * np.sin(t / 7 + k)
            cx = width * (0.3 + 0.4 * k) + 0.1 * width * np.cos(t / 9 + k)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < (0.12 * min(height, width)) ** 2] = colour
        video[t] = img
    mask = np.zeros((height, width), np.uint8)
    mask[(video[0] == (230, 40, 40)).all(-1)] = 1
    mask[(video[0] == (40, 40, 230)).all(-1)] = 2
    return video, mask


def dense_topk_readout(sim: torch.Tensor, value: torch.Tensor, top_k: int):
    """The official read: top-k weights scattered into a dense affinity matrix, dense matmul."""
    top, idx = torch.topk(sim, k=min(top_k, sim.shape[1]), dim=1)
    weights = torch.softmax(top, dim=1)
    affinity = torch.zeros_like(sim).scatter_(1, idx, weights)   # (P, N)
    return value @ affinity.t(), affinity.sum(0)


def _model():
    from models import golden_init, load_model

    return golden_init(load_model("xmem", device="cpu"), seed=0, s=1.1)


def time_frames(model, frames: np.ndarray, mask: np.ndarray) -> tuple[list[float], np.ndarray]:
    """(seconds of frames 1..T-1, label maps (T, H, W): index i = the i-th label of the first mask)."""
    from models.xmem.inference import iterate_video

    times, labels, start = [], [], time.perf_counter()
    with torch.inference_mode():
        for t, prob, _ in iterate_video(model, frames, mask, model.config):
            labels.append(prob.argmax(0).numpy().astype(np.uint8))
            now = time.perf_counter()
            if t > 0:
                times.append(now - start)
            start = now
    return times, np.stack(labels)


def official_timer(repo: str, state: dict):
    """Time the official XMem code (a checkout of github.com/hkchengrex/XMem) on the same weights.

    The ImageNet download of its constructor is skipped; our golden-init weights are loaded.
    """
    sys.path.insert(0, str(Path(repo).resolve()))
    import model.resnet as official_resnet  # noqa: the official package names

    official_resnet.model_zoo.load_url = lambda *a, **k: {}
    official_resnet.load_weights_add_extra_dim = lambda *a, **k: None
    from inference.inference_core import InferenceCore as OfficialCore
    from model.network import XMem as OfficialXMem

    config = {"top_k": 30, "mem_every": 5, "deep_update_every": -1, "enable_long_term": True,
              "enable_long_term_count_usage": False, "min_mid_term_frames": 5, "max_mid_term_frames": 10,
              "num_prototypes": 128, "max_long_term_elements": 10000, "key_dim": 64, "value_dim": 512,
              "hidden_dim": 64}
    net = OfficialXMem(dict(config)).eval()
    net.load_state_dict(state)

    def run(frames: np.ndarray, mask: np.ndarray) -> tuple[list[float], np.ndarray]:
        from models.xmem.inference import normalise

        core = OfficialCore(net, dict(config))
        core.set_all_labels([1, 2])
        onehot = torch.stack([torch.from_numpy(mask == k) for k in (1, 2)]).float()
        times, labels, start = [], [], time.perf_counter()
        with torch.inference_mode():
            for t in range(len(frames)):
                rgb = normalise(frames[t])
                prob = core.step(rgb, onehot if t == 0 else None, [1, 2] if t == 0 else None,
                                 end=t == len(frames) - 1)
                labels.append(prob.argmax(0).numpy().astype(np.uint8))
                now = time.perf_counter()
                if t > 0:
                    times.append(now - start)
                start = now
        return times, np.stack(labels)

    return run


def cmd_speed(args) -> None:
    import models.xmem.memory as memory

    torch.set_num_threads(args.threads)
    model = _model()
    if not META.is_file():
        raise SystemExit(f"golden meta.json not found: {META} (tests/golden, or set DAVIS_C_SHARED)")
    official = json.loads(META.read_text())["cpu_timing_rough"]
    print(f"XMem s/frame, 2 objects, {args.frames} frames (median of frames 1..T-1, best of {args.repeats} "
          "alternating runs after a warm-up), "
          f"torch threads={torch.get_num_threads()}, float32 CPU")
    ref_name = "official code (same run)" if args.official else "ours+dense read (same run)"
    print(reference_line(Path(args.official).resolve() if args.official else None,
                         "OUR network with the official dense top-k read"))
    print(f"{'size':>9} | {'ours':>7} | {ref_name:>21} | ratio | official 1 thr / 2 thr (meta.json) | agreement")
    ours_read = memory.topk_readout
    official_run = official_timer(args.official, model.state_dict()) if args.official else None
    for size in args.sizes:
        h, w = (int(v) for v in size.lower().split("x"))
        frames, mask = synthetic_video(args.frames, h, w)
        def ours_run(frames=frames, mask=mask):
            return time_frames(model, frames, mask)

        def dense_run(frames=frames, mask=mask):
            memory.topk_readout = dense_topk_readout
            try:
                return time_frames(model, frames, mask)
            finally:
                memory.topk_readout = ours_read

        # the official code itself is the better reference when available
        reference = official_run if official_run is not None else dense_run
        # warm-up (allocator, oneDNN primitives for this shape), then alternate; best run's median
        ours_run(frames[:2], mask)
        reference(frames[:2], mask)
        ours_times, ref_times = [], []
        for _ in range(args.repeats):
            times, ours_labels = ours_run()
            ours_times.append(statistics.median(times))
            times, ref_labels = reference(frames, mask)
            ref_times.append(statistics.median(times))
        ours, ref = min(ours_times), min(ref_times)
        a = agreement(ours_labels, ref_labels)
        o1 = official.get("one_thread", {}).get(f"{h}x{w}", float("nan"))
        o2 = official.get("two_threads_uncontended_approx", {}).get(f"{h}x{w}", float("nan"))
        print(f"{size:>9} | {ours:7.3f} | {ref:21.3f} | {ref / ours:5.2f} | {o1:.2f} / {o2:.2f}"
              f"{'':>23} | {100 * a['equal_fraction']:.4f} % equal ({a['pixels_differ']} px differ)", flush=True)
        record(args.json, model="xmem", threads=torch.get_num_threads(), size=size, frames=args.frames,
               ours_s=ours, reference_s=ref, ratio=ref / ours, reference="official" if args.official else "dense read",
               commit=commit_of(Path(args.official).resolve()) if args.official else None,
               equal_fraction=a["equal_fraction"], pixels_differ=a["pixels_differ"])
    print("ratio = reference / ours (> 1: ours is faster); meta.json numbers were taken on another shared "
          "machine (order of magnitude only).")


def _memory_child(args) -> None:
    """Runs in a subprocess so VmHWM is this configuration's own peak."""
    from models.xmem.inference import iterate_video

    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.lower().split("x"))
    frames, mask = synthetic_video(args.frames, h, w)
    model = _model()
    cfg = {**model.config, **json.loads(args.config)}
    peak_elems = [0, 0]
    probs = np.zeros((3, args.frames, h, w), np.float32)   # what segment() returns
    start = time.perf_counter()
    with torch.inference_mode():
        for t, prob, core in iterate_video(model, frames, mask, cfg):
            probs[:, t] = prob.numpy()
            peak_elems = [max(peak_elems[0], core.memory.work.size), max(peak_elems[1], core.memory.long.size)]
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    mem = core.memory
    print(json.dumps({"peak_rss_mb": hwm / 1024, "seconds": time.perf_counter() - start,
                      "max_work_elements": peak_elems[0], "max_long_elements": peak_elems[1],
                      "hw": mem.hw, "consolidations": mem.consolidations, "removals": len(mem.removals)}))


def cmd_memory(args) -> None:
    configs = {
        "long-term on (eval.py defaults)": {},
        "long-term on, max_long_term_elements=600": {"max_long_term_elements": 600,
                                                    "enable_long_term_count_usage": True},
        "long-term off (working memory only)": {"enable_long_term": False},
    }
    print(f"XMem memory over {args.frames} synthetic frames at {args.size} (2 objects, mem_every 5)", flush=True)
    for name, cfg in configs.items():
        cmd = [sys.executable, __file__, "_memory_child", "--frames", str(args.frames), "--size", args.size,
               "--threads", str(args.threads), "--config", json.dumps(cfg)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"  {name:42s} peak RSS {r['peak_rss_mb']:7.0f} MB | max elements work {r['max_work_elements']:6d} "
              f"long {r['max_long_elements']:6d} (HW={r['hw']}) | consolidations {r['consolidations']:3d} "
              f"removals {r['removals']:3d} | {r['seconds']:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _device import dispatch  # --device mode: the figures that size a run (benchmarks/_device.py)

    if dispatch("xmem", ["plain", "mcc", "ent", "ae"], argv):
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    speed = sub.add_parser("speed", help="seconds per frame vs the dense-read reference and official timings")
    speed.add_argument("--sizes", nargs="+", default=["240x432", "480x864"], help="HxW sizes (default: %(default)s)")
    speed.add_argument("--frames", type=int, default=6, help="frames per video (default: %(default)s)")
    speed.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    speed.add_argument("--repeats", type=int, default=2, help="alternating runs per implementation; the best "
                       "run counts (default: %(default)s)")
    speed.add_argument("--official", metavar="DIR", help="also time the official code from this checkout of "
                       "github.com/hkchengrex/XMem (same weights, same frames, same run)")
    add_json_argument(speed)
    mem = sub.add_parser("memory", help="peak memory over a long synthetic video")
    mem.add_argument("--frames", type=int, default=300, help="video length (default: %(default)s)")
    mem.add_argument("--size", default="120x216", help="HxW (default: %(default)s)")
    mem.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    child = sub.add_parser("_memory_child")
    child.add_argument("--frames", type=int)
    child.add_argument("--size")
    child.add_argument("--threads", type=int)
    child.add_argument("--config")
    args = parser.parse_args(argv)
    {"speed": cmd_speed, "memory": cmd_memory, "_memory_child": _memory_child}[args.cmd](args)


if __name__ == "__main__":
    main()
