"""The ``--device`` mode of bench_ttt.py / bench_stcn.py / bench_xmem.py: the figures that size a run.

    python benchmarks/bench_ttt.py --device cuda                       # STCN: plain, tt-MCC, tt-Ent, tt-AE
    python benchmarks/bench_xmem.py --device cuda --figures figures.json
    python benchmarks/bench_ttt.py --device cpu --size 48x80 --frames 6 --rounds 1 --iterations 1 --workers 1 2

For a synthetic DAVIS-sized video (default 480x854, 70 frames, 2 objects moving over texture, with
ground truth for every frame) and golden-init weights (the cost depends on the architecture, not on
the weights), each method runs as one harness unit does -- ``models.ttt.adapt`` with the released
protocol (the ``<model>_<kind>`` preset: 10 rounds x 10 iterations) and then ``segment`` -- and
prints, per method:

* seconds per unit (TTT + inference) and peak memory (``torch.cuda.max_memory_allocated`` on a GPU,
  peak resident memory on a CPU), in **exact** mode (float32, TF32 off, cudnn autotuning off:
  the numbers the toolkit is tested on) and in the opt-in **fast** mode (``amp=True``: bfloat16
  autocast, TF32 matmuls and convolutions, channels_last weights, cudnn benchmark);
* the J&F of both modes against the synthetic ground truth and their difference (the cost of the
  fast mode in accuracy, on this video);
* units per hour per device with 1, 2 and 4 workers: that many processes on the device, started
  together after building their models, each running the unit; throughput = units / wall time;
* for STCN plain inference, the official-style loop of ``bench_stcn.py`` in the same run.

Each measurement runs in a fresh process (its own peak memory).  ``--figures FILE`` adds the
figures to the JSON file ``python -m harness.run ... --estimate --figures FILE`` reads.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import queue as queue_mod
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

__all__ = ["DAVIS_SIZE", "DAVIS_FRAMES", "UnitSpec", "synthetic_davis_video", "precision", "prepare_model",
           "run_unit", "throughput", "add_arguments", "main_device", "dispatch"]

DAVIS_SIZE = (480, 854)
DAVIS_FRAMES = 70
KIND_NAMES = {None: "plain", "mcc": "tt-MCC", "ent": "tt-Ent", "ae": "tt-AE"}


@dataclass(frozen=True)
class UnitSpec:
    """One benchmark unit (picklable: it crosses process boundaries)."""

    model: str                     # models.load_model name: stcn | xmem
    kind: str | None               # None (plain inference) | mcc | ent | ae
    device: str = "cpu"
    amp: bool = False              # fast mode
    height: int = DAVIS_SIZE[0]
    width: int = DAVIS_SIZE[1]
    frames: int = DAVIS_FRAMES
    objects: int = 2
    rounds: int | None = None      # None: the preset's (released protocol)
    iterations: int | None = None
    threads: int | None = None
    impl: str = "ours"             # ours | official-style (STCN plain inference only)
    save_labels: str | None = None # write the predicted labels here (.npy)
    ref_labels: str | None = None  # score the labels against these too ("agreement" J&F)
    repeats: int = 1               # timed runs of the unit; the fastest counts (noisy, shared machines)
    load_options: tuple = ()       # (name, value) pairs for models.load_model, e.g. (("image_size", 128),)

    @property
    def method(self) -> str:
        return self.model if self.kind is None else f"{self.model}+{self.kind}"


# ------------------------------------------------------------------------------------------ video
def synthetic_davis_video(frames: int = DAVIS_FRAMES, height: int = DAVIS_SIZE[0], width: int = DAVIS_SIZE[1],
                          objects: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (T, H, W, 3) frames and (T, H, W) ground-truth labels: ``objects`` discs of distinct
    colours moving smoothly over a blocky random texture (the later discs occlude the earlier)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    block = max(2, min(height, width) // 30)
    base = rng.integers(0, 255, (height // block + 1, width // block + 1, 3), dtype=np.uint8)
    base = base.repeat(block, 0).repeat(block, 1)[:height, :width]
    colours = rng.integers(0, 255, (objects, 3))
    radius = 0.12 * min(height, width)
    video = np.empty((frames, height, width, 3), np.uint8)
    labels = np.zeros((frames, height, width), np.uint8)
    for t in range(frames):
        img = base.copy()
        for k in range(objects):
            cy = height * (0.3 + 0.4 * k / max(1, objects - 1)) + 0.12 * height * np.sin(t / 7 + k)
            cx = width * (0.25 + 0.5 * k / max(1, objects - 1)) + 0.15 * width * np.cos(t / 9 + 2 * k)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < radius ** 2
            img[disc] = colours[k]
            labels[t][disc] = k + 1
        video[t] = img
    return video, labels


# ------------------------------------------------------------------------------------------ precision
@contextlib.contextmanager
def precision(device: str, amp: bool):
    """Exact mode (float32, TF32 off, no cudnn autotuning) or fast mode (bfloat16 autocast, TF32,
    cudnn benchmark) for everything run inside; the previous global settings are restored after."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark,
             torch.get_float32_matmul_precision())
    torch.backends.cuda.matmul.allow_tf32 = amp
    torch.backends.cudnn.allow_tf32 = amp
    torch.backends.cudnn.benchmark = amp
    torch.set_float32_matmul_precision("high" if amp else "highest")
    kind = torch.device(device).type
    try:
        with torch.autocast(kind, dtype=torch.bfloat16, enabled=amp):
            yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark,
         precision_) = saved
        torch.set_float32_matmul_precision(precision_)


def prepare_model(model: str, device: str, amp: bool, load_options=()):
    """Golden-init weights of ``model`` on ``device``; channels_last in fast mode."""
    from models import golden_init, load_model

    vos = golden_init(load_model(model, device="cpu", **dict(load_options)), seed=0, s=1.0).eval()
    vos = vos.to(device)
    if amp:
        vos = vos.to(memory_format=torch.channels_last)
    return vos


# ------------------------------------------------------------------------------------------ one unit
def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _ttt_params(spec: UnitSpec) -> dict:
    from models import ttt

    params = dict(ttt.load_preset(f"{spec.model}_{spec.kind}"))
    params["resolution"] = None  # the synthetic video already has the model's size (shorter side 480)
    if spec.rounds is not None:
        params["rounds"] = spec.rounds
    if spec.iterations is not None:
        params["iterations"] = spec.iterations
    return params


def _segment(spec: UnitSpec, vos, frames: np.ndarray, first: np.ndarray) -> np.ndarray:
    if spec.impl == "official-style":
        if spec.model != "stcn" or spec.kind is not None:
            raise ValueError("the official-style loop is measured for STCN plain inference only")
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_stcn import official_style

        return official_style(vos, frames, first)
    with torch.no_grad():
        return vos.segment(frames, first)


def run_unit(spec: UnitSpec, vos=None, video=None, score: bool = True) -> dict:
    """Adapt (TTT) + segment one synthetic video as a harness unit does; seconds, peak memory, J&F."""
    from harness.executor import _peak_mb, _reset_peak, score_video, seed_everything
    from models import ttt

    frames, gt = video if video is not None else synthetic_davis_video(spec.frames, spec.height, spec.width,
                                                                       spec.objects)
    vos = vos if vos is not None else prepare_model(spec.model, spec.device, spec.amp, spec.load_options)
    first = gt[0]
    seed_everything(1)
    _sync(spec.device)
    _reset_peak(spec.device)
    t0 = time.perf_counter()
    with precision(spec.device, spec.amp):
        adapted = ttt.adapt(vos, frames, first, seed=1, **_ttt_params(spec)) if spec.kind else vos
        _sync(spec.device)
        t1 = time.perf_counter()
        probs = _segment(spec, adapted, frames, first)
    _sync(spec.device)
    t2 = time.perf_counter()
    out = {"seconds": t2 - t0, "ttt_s": t1 - t0, "inference_s": t2 - t1, "peak_mb": _peak_mb(spec.device)}
    if score:
        labels = np.asarray(probs, dtype=np.float32).argmax(0).astype(np.uint8)  # objects 1..K in order
        out["JF"] = score_video(gt, labels, "synthetic")["JF"]
        if spec.save_labels:
            np.save(spec.save_labels, labels)
        if spec.ref_labels:  # the other run's labels as ground truth: 100 = the same segmentation
            ref = np.load(spec.ref_labels)
            ref[0] = gt[0]  # frame 0 is the given mask in both
            out["JF_agreement"] = score_video(ref, labels, "synthetic")["JF"]
    return out


def _warm_up(spec: UnitSpec, vos) -> None:
    """Allocator, kernels, cudnn autotuning: a short clip with one TTT step, not timed."""
    short = replace(spec, frames=min(spec.frames, 4), rounds=1 if spec.kind else None,
                    iterations=1 if spec.kind else None)
    run_unit(short, vos=vos, score=False)


def _child(spec: UnitSpec) -> dict:
    if spec.threads:
        torch.set_num_threads(spec.threads)
    if spec.device.startswith("cuda"):
        torch.cuda.set_device(spec.device)
    vos = prepare_model(spec.model, spec.device, spec.amp, spec.load_options)
    _warm_up(spec, vos)
    runs = [run_unit(spec, vos=vos) for _ in range(max(1, spec.repeats))]
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "peak_mb": max(r["peak_mb"] for r in runs), "repeats": len(runs)}


def _worker(spec: UnitSpec, barrier, queue) -> None:
    if spec.threads:
        torch.set_num_threads(spec.threads)
    if spec.device.startswith("cuda"):
        torch.cuda.set_device(spec.device)
    vos = prepare_model(spec.model, spec.device, spec.amp, spec.load_options)
    video = synthetic_davis_video(spec.frames, spec.height, spec.width, spec.objects)
    _warm_up(spec, vos)
    barrier.wait()
    start = time.time()
    run_unit(spec, vos=vos, video=video, score=False)
    queue.put((start, time.time()))


def throughput(spec: UnitSpec, workers: int) -> float:
    """Units per hour on one device with ``workers`` processes each running the unit at once."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(spec, barrier, queue)) for _ in range(workers)]
    for p in procs:
        p.start()
    spans: list = []
    while len(spans) < workers:  # a worker that dies must not leave the others waiting at the barrier
        try:
            spans.append(queue.get(timeout=5))
        except queue_mod.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                for p in procs:
                    p.terminate()
                raise RuntimeError(f"a {workers}-worker throughput process failed "
                                   f"(exit codes {[p.exitcode for p in procs]})") from None
    for p in procs:
        p.join()
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    return workers / wall * 3600


def _in_child(spec: UnitSpec) -> dict:
    """run the measurement in a fresh interpreter (its own peak memory)."""
    cmd = [sys.executable, __file__, "--_spec", json.dumps(asdict(spec))]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{spec.method} ({'fast' if spec.amp else 'exact'}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ CLI
def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size expects HxW such as 480x854, got {text!r}") from None
    return h, w


def add_arguments(ap: argparse.ArgumentParser, kinds: list[str]) -> None:
    ap.add_argument("--device", required=True, help="cpu, cuda or cuda:N")
    ap.add_argument("--size", type=_size, default=DAVIS_SIZE, metavar="HxW",
                    help="synthetic video size (default 480x854, DAVIS 480p)")
    ap.add_argument("--frames", type=int, default=DAVIS_FRAMES, help="frames (default 70)")
    ap.add_argument("--objects", type=int, default=2, help="objects (default 2)")
    ap.add_argument("--methods", nargs="+", default=kinds, choices=["plain", "mcc", "ent", "ae"],
                    help=f"what to measure (default {' '.join(kinds)})")
    ap.add_argument("--rounds", type=int, help="TTT rounds (default: the released preset, 10)")
    ap.add_argument("--iterations", type=int, help="TTT iterations per round (default: the released preset, 10)")
    ap.add_argument("--modes", nargs="+", default=["exact", "fast"], choices=["exact", "fast"],
                    help="exact (float32, TF32 off) and/or fast (amp=True: bf16 autocast, TF32, channels_last, "
                         "cudnn benchmark); default both")
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2, 4], metavar="N",
                    help="worker counts for units per hour per device (default 1 2 4; 0 = skip)")
    ap.add_argument("--threads", type=int, help="torch threads per process (default: torch's)")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per measurement, the fastest counts "
                    "(default 1)")
    ap.add_argument("--no-official", action="store_true", help="skip the official-style STCN inference loop")
    ap.add_argument("--figures", metavar="FILE", help="add the exact-mode figures to this JSON file for "
                    "python -m harness.run --estimate --figures FILE")


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def main_device(model: str, argv: list[str], kinds: list[str]) -> None:
    """The ``--device`` mode of a benchmark script for ``model`` (stcn | xmem)."""
    ap = argparse.ArgumentParser(prog=f"bench ({model}) --device", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap, kinds)
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU visible to torch")
    h, w = args.size
    base = UnitSpec(model, None, device=args.device, height=h, width=w, frames=args.frames, objects=args.objects,
                    rounds=args.rounds, iterations=args.iterations, threads=args.threads, repeats=args.repeats)
    protocol = ("released protocol" if args.rounds is None and args.iterations is None
                else f"{args.rounds or 'preset'} rounds x {args.iterations or 'preset'} iterations")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{model} on {args.device} ({_device_name(args.device)}): synthetic video {h}x{w}, {args.frames} frames, "
          f"{args.objects} objects, golden-init weights; TTT: {protocol}")
    print("  s/unit = TTT + inference seconds; peak = " + ("torch.cuda.max_memory_allocated"
                                                          if args.device.startswith("cuda") else "peak RSS"))
    tmp = tempfile.TemporaryDirectory(prefix="bench_device_")
    for name in args.methods:
        kind = None if name == "plain" else name
        spec = replace(base, kind=kind)
        res = {}
        ref = str(Path(tmp.name) / f"{spec.method}_exact.npy")
        for mode in args.modes:
            mine = replace(spec, amp=mode == "fast")
            if mode == "exact":
                mine = replace(mine, save_labels=ref)
            elif "exact" in res:
                mine = replace(mine, ref_labels=ref)
            r = res[mode] = _in_child(mine)
            print(f"  {spec.method:<10} {mode:>5}: {r['seconds']:8.2f} s/unit (TTT {r['ttt_s']:.2f} s + inference "
                  f"{r['inference_s']:.2f} s), peak {r['peak_mb']:.0f} MiB, J&F {100 * r['JF']:.2f}")
        if "exact" in res and "fast" in res:
            e, f = res["exact"], res["fast"]
            print(f"  {spec.method:<10} fast vs exact: speed-up {e['seconds'] / f['seconds']:.2f}x, peak memory "
                  f"{f['peak_mb'] / e['peak_mb']:.2f}x, J&F difference {100 * (f['JF'] - e['JF']):+.2f}; J&F of "
                  f"fast against the exact labels {100 * f['JF_agreement']:.2f} (100 = identical)")
        if model == "stcn" and kind is None and not args.no_official:
            o = _in_child(replace(spec, impl="official-style", ref_labels=ref if "exact" in res else None))
            agree = f"; J&F against ours {100 * o['JF_agreement']:.2f}" if "JF_agreement" in o else ""
            print(f"  {'stcn':<10} official-style loop (exact): {o['seconds']:.2f} s/unit, peak {o['peak_mb']:.0f} "
                  f"MiB, J&F {100 * o['JF']:.2f}{agree}"
                  + (f"; ours is {o['seconds'] / res['exact']['seconds']:.2f}x faster" if "exact" in res else ""))
        per_hour = {}
        for n in (n for n in args.workers if n > 0):
            for mode in args.modes:
                uph = throughput(replace(spec, amp=mode == "fast"), n)
                per_hour.setdefault(mode, {})[str(n)] = uph
                print(f"  {spec.method:<10} {mode:>5}: {uph:8.1f} units/hour per device with {n} worker(s)")
        if args.figures and "exact" in res:
            from harness.estimate import write_figures

            write_figures(args.figures, spec.method, {
                "device": _device_name(args.device), "mode": "exact",
                "video": {"height": h, "width": w, "frames": args.frames, "objects": args.objects},
                "protocol": protocol, "seconds_per_unit": res["exact"]["seconds"],
                "peak_memory_mb": res["exact"]["peak_mb"], "units_per_hour": per_hour.get("exact", {}),
                **({"fast": {"seconds_per_unit": res["fast"]["seconds"], "peak_memory_mb": res["fast"]["peak_mb"],
                             "units_per_hour": per_hour.get("fast", {}),
                             "JF_minus_exact": res["fast"]["JF"] - res["exact"]["JF"]}} if "fast" in res else {}),
                "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    tmp.cleanup()
    if args.figures:
        print(f"  figures written to {args.figures}")


def dispatch(model: str, kinds: list[str], argv: list[str] | None) -> bool:
    """Run the ``--device`` mode when ``argv`` asks for it (then return True); else leave it alone."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not any(a == "--device" or a.startswith("--device=") for a in argv):
        return False
    main_device(model, argv, kinds)
    return True


if __name__ == "__main__":  # a measurement child: python _device.py --_spec JSON
    if len(sys.argv) == 3 and sys.argv[1] == "--_spec":
        print(json.dumps(_child(UnitSpec(**json.loads(sys.argv[2])))))
    else:
        raise SystemExit("run bench_ttt.py / bench_stcn.py / bench_xmem.py with --device")
