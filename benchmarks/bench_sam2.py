"""SAM 2.1 speed and peak memory (Hiera-T and Hiera-B+, golden-init-v2 weights, 2 objects), against the
official code when you have it.

Seconds per tracked frame (median over frames 1..T-1; frame 0 is the annotated frame) and peak
memory (CPU: peak resident set size of a fresh child process; CUDA: ``max_memory_allocated``) of our
implementation, next to a reference measured in the same run, on the same JPEG frames (written once,
decoded by PIL as the official loader does), the same weights and the same thread count:

* ``--official PATH`` (a checkout of facebookresearch/sam2 with ``hydra-core`` and ``iopath`` installed):
  the official ``SAM2VideoPredictor`` as ``tools/vos_inference.py`` builds it (``non_overlap_masks`` on,
  no post-processing), given our golden-init weights as a checkpoint file.  Both sides have their frames
  resized before the clock starts (the official ``init_state`` loads every frame up front).  The label
  maps are compared: the fraction of equal pixels is printed next to the ratio.
* otherwise OUR OWN PLAIN VARIANT of the same network -- every attention computed as an explicit
  softmax(QK^T)V matrix product instead of ``scaled_dot_product_attention``.

The output says which reference was used.

    python benchmarks/bench_sam2.py --models sam2.1_hiera_t --frames 4 --threads 1 2 --official ~/src/sam2
    python benchmarks/bench_sam2.py --device cuda --amp          # bf16 autocast as the official script
"""
from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _official import (add_json_argument, add_official_argument, agreement, checkout, commit_of,  # noqa: E402
                       record, reference_line, run_child)


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


def write_frames(folder: Path, frames: int, size: tuple[int, int]) -> tuple[Path, np.ndarray]:
    """The synthetic video as JPEG files 00000.jpg ... (quality 95; the official loader reads a folder of
    JPEGs) and its first-frame label map; returns (folder, label map)."""
    from PIL import Image

    video, mask = synthetic_video(frames, *size)
    folder.mkdir(parents=True, exist_ok=True)
    for t, img in enumerate(video):
        Image.fromarray(img).save(folder / f"{t:05d}.jpg", quality=95)
    return folder, mask


def _decoded(folder: Path) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.jpg"))])


def _peak(device: str) -> float:
    return (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def child(spec: dict) -> dict:
    """One measurement of our implementation in this (fresh) process."""
    import models
    from models.sam2.inference import label_map, preprocess, track

    torch.set_num_threads(spec["threads"])
    device = spec["device"]
    vos = models.golden_init(models.load_model(spec["model"], device=device))
    frames = _decoded(Path(spec["frames_dir"]))
    mask = np.load(spec["mask"])
    starts = [(0, mask == 1), (0, mask == 2)]
    images = [preprocess(f, device) for f in frames]  # before the clock, as the official init_state does
    ctx = plain_attention() if spec["impl"] == "plain" else contextlib.nullcontext()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times, labels = [], []
    with ctx, torch.inference_mode():
        _sync(device)
        t0 = time.perf_counter()
        for t, logits in track(vos, len(frames), lambda i: images[i], starts, mask.shape, amp=spec["amp"]):
            labels.append(label_map(logits, [1, 2]).cpu().numpy())
            _sync(device)
            now = time.perf_counter()
            times.append(now - t0)
            t0 = now
    if spec.get("labels_out"):
        np.save(spec["labels_out"], np.stack(labels))
    return {"times": times, "peak_mb": _peak(device)}


def official_child(spec: dict) -> dict:
    """One measurement of the official predictor (the checkout is first on sys.path) in this process."""
    import models
    from models.sam2.inference import label_map
    from sam2.build_sam import build_sam2_video_predictor

    torch.set_num_threads(spec["threads"])
    device = spec["device"]
    ckpt = Path(spec["workdir"]) / f"{spec['model']}.pt"
    if not ckpt.exists():  # our golden-init weights under the official names, as a release file stores them
        vos = models.golden_init(models.load_model(spec["model"], device="cpu"))
        torch.save({"model": vos.state_dict()}, ckpt)
    predictor = build_sam2_video_predictor(f"configs/sam2.1/{spec['model']}.yaml", str(ckpt), device=device,
                                           apply_postprocessing=False,
                                           hydra_overrides_extra=["++model.non_overlap_masks=true"])
    mask = np.load(spec["mask"])
    times, labels = [], []
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16,
                                                 enabled=spec["amp"] and device.startswith("cuda")):
        state = predictor.init_state(video_path=spec["frames_dir"], async_loading_frames=False)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        _sync(device)
        t0 = time.perf_counter()
        for obj in (1, 2):
            predictor.add_new_mask(state, frame_idx=0, obj_id=obj, mask=mask == obj)
        for _, obj_ids, logits in predictor.propagate_in_video(state):
            labels.append(label_map(logits[:, 0].float(), list(obj_ids)).cpu().numpy())
            _sync(device)
            now = time.perf_counter()
            times.append(now - t0)
            t0 = now
    np.save(spec["labels_out"], np.stack(labels))
    return {"times": times, "peak_mb": _peak(device)}


def main(argv: list[str] | None = None) -> None:
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "_child":
        spec = json.loads(sys.argv[2])
        print(json.dumps(official_child(spec) if spec["impl"] == "official" else child(spec)))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["sam2.1_hiera_t", "sam2.1_hiera_b+"])
    p.add_argument("--frames", type=int, default=4, help="video length (frame 0 is not timed); default 4")
    p.add_argument("--size", default="240x432", help="HxW of the video (SAM 2 always runs at 1024x1024)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA only; ignored on CPU)")
    p.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()],
                   help="torch thread counts to measure (each in its own processes); default: torch's")
    p.add_argument("--repeats", type=int, default=1,
                   help="alternating runs of ours and the reference per setting; the median is printed")
    add_official_argument(p, "facebookresearch/sam2", "sam2/build_sam.py")
    add_json_argument(p)
    args = p.parse_args(argv)
    if args.frames < 2:
        p.error("--frames must be at least 2")
    official = checkout(args.official, "sam2/build_sam.py", p)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    ref = "official" if official else "plain"
    print(f"device {args.device}, {args.frames} frames of {size[0]}x{size[1]} (JPEG q95), 2 objects, "
          f"amp={args.amp and args.device.startswith('cuda')}, {args.repeats} alternating run(s), medians")
    print(reference_line(official, "our plain variant: explicit softmax(QK^T)V attention"))
    print(f"{'model':<16}{'threads':>8}{'ours s/fr':>11}{ref + ' s/fr':>15}{'ratio':>7}{'ours MB':>9}"
          f"{ref + ' MB':>13}  agreement")
    with tempfile.TemporaryDirectory(prefix="bench_sam2_") as tmp:
        folder, mask = write_frames(Path(tmp) / "frames", args.frames, size)
        np.save(Path(tmp) / "mask.npy", mask)
        for name in args.models:
            for threads in args.threads:
                res: dict[str, list] = {"ours": [], ref: []}
                for _ in range(args.repeats):
                    for impl in ("ours", ref):
                        spec = {"model": name, "impl": impl, "device": args.device, "amp": bool(args.amp),
                                "threads": threads, "frames_dir": str(folder), "mask": str(Path(tmp) / "mask.npy"),
                                "workdir": tmp, "labels_out": str(Path(tmp) / f"{impl}.npy")}
                        r = run_child(__file__, spec, official if impl == "official" else None)
                        res[impl].append((statistics.median(r["times"][1:]), r["peak_mb"]))
                o = [statistics.median(v) for v in zip(*res["ours"])]
                f = [statistics.median(v) for v in zip(*res[ref])]
                agree, a = "-", {}
                if official:
                    a = agreement(np.load(Path(tmp) / "ours.npy"), np.load(Path(tmp) / "official.npy"))
                    agree = f"{100 * a['equal_fraction']:.4f} % equal ({a['pixels_differ']} px differ)"
                record(args.json, model=name, threads=threads, size=f"{size[0]}x{size[1]}", frames=args.frames,
                       ours_s=o[0], reference_s=f[0], ratio=f[0] / o[0], ours_mb=o[1], reference_mb=f[1],
                       reference=ref, commit=commit_of(official) if official else None,
                       equal_fraction=a.get("equal_fraction"), pixels_differ=a.get("pixels_differ"))
                print(f"{name:<16}{threads:>8}{o[0]:>11.2f}{f[0]:>15.2f}{f[0] / o[0]:>7.2f}{o[1]:>9.0f}{f[1]:>13.0f}"
                      f"  {agree}", flush=True)
    print(f"ratio = {ref} / ours s/frame (> 1: ours is faster)")


if __name__ == "__main__":
    main()
