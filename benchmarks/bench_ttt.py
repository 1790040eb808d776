"""tt-MCC protocol timing: ours (``models.ttt.adapt``) against an official-style loop, same run.

    python benchmarks/bench_ttt.py                       # 20 frames 120x216, 2 rounds x 10 iterations
    python benchmarks/bench_ttt.py --rounds 1 --iterations 3 --threads 2
    python benchmarks/bench_ttt.py --memory [--kinds mcc ent ae] [--video DIR] [--frames 40]   # peak memory
    python benchmarks/bench_ttt.py --checkpointing [--kinds mcc] [--frames 20] [--iterations 3]  # memory mode

The video: the 240x432 golden video (``tests/golden/stcn/inference.npz``) downsampled 2x to
120x216 and played forward then backward to 20 frames, 2 objects, golden-init weights.  Both runs
follow the identical protocol: initial pseudo-label pass, per round a pseudo-label refresh (tt-MCC),
a new Adam, ``iterations`` cycle steps on triplets 0 < i < j (jump 10), then a final inference.

The official-style run re-enacts the official ``eval_all_datasets_ttt.py`` work with our modules:
weights copied into separate training / inference networks, pseudo-labels argmaxed and written as
PNGs to a temporary folder every pass, each sample read back from PNG files (frames stored as
PNG once beforehand, not timed) and normalised, the cycle with one value-encoder / decoder call
per object (query features re-convolved for every object), the non-fused Adam, and the official
inference loop of ``bench_stcn.py``.  The official data loader's 16 worker processes are NOT
re-enacted (that makes the ratio conservative).

Printed: wall and process-CPU seconds of the whole protocol and of one iteration for both, the
ratios, peak RSS, and the golden README's official numbers (one tt-MCC iteration ~10.5 s at
240x432 with 2 threads; inference ~0.55 s/frame).

``--memory``: peak resident memory of one harness unit per TTT kind (each kind in a fresh process, STCN with
golden-init weights on CPU, ``--rounds`` x ``--iterations`` (default 1 x 1 here) at the official TTT
resolution 480, then the segmentation of the whole video), split into stages: the uint8 frames, one
training step alone (a sample's loss and its backward pass: the autograd graph), ``adapt`` (model copy,
prepared sample frames, pseudo-label pass for tt-MCC, the training steps) and ``segment``; then STCN
inference alone in two fresh processes, with the frames normalised one at a time (``STCN.segment``) and with
the whole video normalised first (the implementation before), printing whether the outputs are identical.  The video: the first ``--frames`` frames of a folder of JPEG frames (``--video``, default
``tests/data/real_davis16/JPEGImages/480p/car-shadow`` with its first mask), else the golden video upscaled.

``--checkpointing``: the opt-in memory mode of TTT (``ttt_params.checkpointing``, activation checkpointing)
against the default exact mode, each in a fresh process on the same video, seed and settings (STCN golden-init,
``--rounds`` x ``--iterations``, default 1 x 3 here, at resolution 480): peak RSS of ``adapt`` over its
start, its CPU-s, whether the adapted weights are bit-identical (max |difference| otherwise), and the J&F of
the adapted model's segmentation against the video's annotations in both modes (their difference).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import models.ttt as ttt  # noqa: E402
from bench_stcn import GOLDEN, official_style  # noqa: E402
from davis_c.masks import write_mask  # noqa: E402
from models import golden_init  # noqa: E402
from models.stcn import STCN  # noqa: E402
from models.aggregate import aggregate  # noqa: E402
from models.imagenet import normalise  # noqa: E402
from models.padding import pad_divide_by  # noqa: E402
from models.ttt.sampler import label_presence, sample_triplet  # noqa: E402


REAL_VIDEO = Path(__file__).resolve().parents[1] / "tests" / "data" / "real_davis16" / "JPEGImages" / "480p" / "car-shadow"


def make_video(n_frames: int = 20) -> tuple[np.ndarray, np.ndarray]:
    z = np.load(GOLDEN)
    small = np.stack([np.asarray(Image.fromarray(f).resize((216, 120), Image.BILINEAR)) for f in z["frames"]])
    order = list(range(12)) + list(range(10, 0, -1)) * 2
    mask = np.asarray(Image.fromarray(z["first_mask"]).resize((216, 120), Image.NEAREST))
    return small[order[:n_frames]], mask


# ----------------------------------------------------------------------------- official-style cycle
def _value(net: STCN, image, f16, mask, other):
    ve = net.value_encoder
    x = ve.conv1(torch.cat([image, mask, other], 1))
    x = ve.layer3(ve.layer2(ve.layer1(ve.maxpool(ve.relu(ve.bn1(x))))))
    x = ve.fuser.block1(torch.cat([x, f16], 1))
    return ve.fuser.block2(x + ve.fuser.attention(x)).unsqueeze(2)


def _decode(net: STCN, x, f8, f4):
    d = net.decoder
    x = d.up_8_4(f4, d.up_16_8(f8, d.compress(x)))
    return F.interpolate(d.pred(F.relu(x)), scale_factor=4, mode="bilinear", align_corners=False)


def _segment(net, qk, qv, qf8, qf4, mk, mv, selector):
    b, ck = mk.shape[:2]
    mkf, qkf = mk.flatten(2), qk.flatten(2)
    affinity = (2 * (mkf.transpose(1, 2) @ qkf) - mkf.pow(2).sum(1).unsqueeze(2)) / math.sqrt(ck)
    affinity = torch.exp(affinity - affinity.max(1, keepdim=True)[0])
    affinity = affinity / affinity.sum(1, keepdim=True)
    h, w = qk.shape[-2:]
    logits = torch.cat([_decode(net, torch.cat([torch.bmm(mv[:, i].flatten(2), affinity).view(b, -1, h, w), qv], 1),
                                qf8, qf4) for i in range(mv.shape[1])], 1)
    prob = torch.sigmoid(logits) * selector[:, :, None, None]
    log_odds = aggregate(prob, dim=1)
    return log_odds, F.softmax(log_odds, dim=1)[:, 1:]


def _propagate(net, rgb, ms, secs, selector, k16, f16t, f16, f8, f4):
    ref_v = torch.stack([_value(net, rgb[:, 0], f16[:, 0], ms[:, j], secs[:, j]) for j in range(ms.shape[1])], 1)
    ref_k = k16[:, :, 0:1]
    outs = []
    for i in range(1, rgb.shape[1]):
        lo, pm = _segment(net, k16[:, :, i], f16t[:, i], f8[:, i], f4[:, i], ref_k, ref_v, selector)
        outs.append((lo, pm))
        if i < rgb.shape[1] - 1:
            other = pm.sum(1, keepdim=True) - pm
            v = torch.stack([_value(net, rgb[:, i], f16[:, i], pm[:, j, None], other[:, j, None])
                             for j in range(pm.shape[1])], 1)
            ref_v = torch.cat([ref_v, v], 3)
            ref_k = torch.cat([ref_k, k16[:, :, i:i + 1]], 2)
    return outs


def official_cycle_loss(net: STCN, batch: dict) -> torch.Tensor:
    rgb = batch["rgb"]
    b, t = rgb.shape[:2]
    f16, f8, f4 = net.key_encoder(rgb.flatten(0, 1))
    k16 = net.key_proj(f16).view(b, t, 64, *f16.shape[-2:]).transpose(1, 2)
    f16t = net.key_comp(f16).view(b, t, 512, *f16.shape[-2:])
    f16, f8, f4 = (x.view(b, t, *x.shape[1:]) for x in (f16, f8, f4))
    fwd = _propagate(net, rgb, batch["gt"][:, :, 0], batch["sec_gt"][:, :, 0], batch["selector"],
                     k16, f16t, f16, f8, f4)
    last = fwd[-1][1][:, :, None]
    bwd = _propagate(net, rgb.flip(1), last, last.sum(1, keepdim=True) - last, batch["selector"],
                     k16.flip(2), f16t.flip(1), f16.flip(1), f8.flip(1), f4.flip(1))
    return F.cross_entropy(bwd[-1][0], batch["cls_gt"][:, 0])


def _official_batch(folder: Path, idx: list[int]) -> dict:
    """Read one sample back from PNG files like the official dataset (frames, pseudo-label masks)."""
    frames = np.stack([np.asarray(Image.open(folder / "frames" / f"{i:05d}.png").convert("RGB")) for i in idx])
    masks = np.stack([np.asarray(Image.open(folder / "labels" / f"{i:05d}.png").convert("P")) for i in idx])
    if len(np.unique(masks[0])) != len(np.unique(masks[-1])):
        frames[-1], masks[-1] = frames[0], masks[0]
    rgb, _ = pad_divide_by(normalise(frames), 16)
    masks = pad_divide_by(torch.from_numpy(masks.astype(np.int64)), 16)[0].numpy()
    labels = [v for v in np.unique(masks[0]) if v != 0]
    cls_gt = np.zeros(masks.shape, np.int64)
    for i, v in enumerate(labels):
        cls_gt[masks == v] = i + 1
    gt = torch.from_numpy(np.stack([(cls_gt == v) for v in labels]).astype(np.float32)).unsqueeze(2)
    sec = gt.sum(0, keepdim=True) - gt
    return {"rgb": rgb[None], "gt": gt[None], "sec_gt": sec[None], "cls_gt": torch.from_numpy(cls_gt)[None],
            "selector": torch.ones(1, len(labels))}


def _write_labels(folder: Path, probs: np.ndarray) -> None:
    """Pseudo-labels as DAVIS palette PNGs, as the official loop writes them.

    (A palette-less Pillow "P" image is saved 1-bit and turns label 2 into 1, which would silently
    train the official-style loop on fewer objects.)
    """
    (folder / "labels").mkdir(exist_ok=True)
    for t, lab in enumerate(probs.argmax(0).astype(np.uint8)):
        write_mask(folder / "labels" / f"{t:05d}.png", lab)


def official_protocol(base: STCN, frames, mask, rounds, iterations, lr, seed, folder: Path, timings: dict):
    rng = np.random.default_rng(seed)
    model = STCN().eval()
    model.load_state_dict(base.state_dict())
    val = STCN().eval()
    val.load_state_dict(model.state_dict())
    _write_labels(folder, official_style(val, frames, mask))
    for _ in range(rounds):
        val.load_state_dict(model.state_dict())
        _write_labels(folder, official_style(val, frames, mask))
        labels = np.stack([np.asarray(Image.open(folder / "labels" / f"{t:05d}.png")) for t in range(len(frames))])
        presence = label_presence(torch.from_numpy(labels), 3)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-7)
        for _ in range(iterations):
            idx, _ = sample_triplet(presence, rng=rng)
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = official_cycle_loss(model, _official_batch(folder, idx))
            loss.backward()
            opt.step()
            timings.setdefault("iter", []).append(time.perf_counter() - t0)
    val.load_state_dict(model.state_dict())
    return official_style(val, frames, mask)


def run_one(impl: str, args) -> dict:
    torch.set_num_threads(args.threads)
    frames, mask = make_video(args.frames)
    base = golden_init(STCN(), seed=0, s=1.0).eval()
    timings: dict = {}
    wall, cpu = time.perf_counter(), time.process_time()
    if impl == "ours":
        adapted = ttt.adapt(base, frames, mask, "mcc", rounds=args.rounds, iterations=args.iterations, lr=1e-6,
                            seed=1)
        adapted.segment(frames, mask)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "frames").mkdir()
            for t, f in enumerate(frames):
                Image.fromarray(f).save(folder / "frames" / f"{t:05d}.png")
            wall, cpu = time.perf_counter(), time.process_time()
            official_protocol(base, frames, mask, args.rounds, args.iterations, 1e-6, 1, folder, timings)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = {"protocol_wall_s": wall, "protocol_cpu_s": cpu,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    # one iteration in isolation (3 repetitions, median), same sample for both implementations
    model = copy.deepcopy(base)
    images = model.prepare(frames)
    labels = model.ttt_pseudo_labels(images, torch.from_numpy(mask.astype(np.int64)))
    batch = ttt.build_batch(images, labels, [([0, 4, 9], [1, 2])], 2)
    opt = (torch.optim.Adam(model.parameters(), lr=1e-6, weight_decay=1e-7, fused=True) if impl == "ours"
           else torch.optim.Adam(model.parameters(), lr=1e-6, weight_decay=1e-7))
    times = []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad()
        loss = (ttt.loss_from_batch(model, batch, "mcc") if impl == "ours" else official_cycle_loss(model, batch))
        loss.backward()
        opt.step()
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    out["iter_wall_s"], out["iter_cpu_s"] = (float(np.median([t[i] for t in times])) for i in (0, 1))
    return out


def _vm(field: str) -> float:
    """VmRSS / VmHWM of this process in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def memory_video(folder: Path | None, n_frames: int) -> tuple[np.ndarray, np.ndarray, str]:
    from davis_c.masks import read_mask

    if folder is not None and folder.is_dir():
        jpgs = sorted(folder.glob("*.jpg"))[:n_frames]
        frames = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in jpgs])
        png = Path(str(folder).replace("JPEGImages", "Annotations")) / f"{jpgs[0].stem}.png"
        raw = read_mask(png)
        mask = (raw > 127).astype(np.uint8) if raw.max() == 255 else raw
        return frames, mask, f"{folder} ({len(frames)} frames)"
    frames, mask = make_video(min(n_frames, 20))
    big = np.stack([np.asarray(Image.fromarray(f).resize((864, 480), Image.BILINEAR)) for f in frames])
    return big, np.asarray(Image.fromarray(mask).resize((864, 480), Image.NEAREST)), "golden video upscaled"


def run_memory(kind: str, args) -> dict:
    torch.set_num_threads(args.threads)
    base_mb = _vm("VmRSS")
    frames, mask, what = memory_video(args.video, args.frames)
    out = {"video": what, "shape": list(frames.shape), "frames_mb": frames.nbytes / 2 ** 20}
    base = golden_init(STCN(), seed=0, s=1.0).eval()
    out["model_rss_mb"] = _vm("VmRSS") - base_mb
    preset = dict(ttt.load_preset(f"stcn_{kind}"))
    for key in ("rounds", "iterations"):
        preset[key] = getattr(args, key)
    preset.pop("seed", None)
    # one training step alone (the loss of one sample and its backward pass, as adapt does each iteration)
    from models.ttt.core import trainable_parameters

    step_model = copy.deepcopy(base)
    chosen = {n for n, _ in trainable_parameters(step_model, kind, preset.get("frozen", "default"))}
    for n, p in step_model.named_parameters():
        p.requires_grad_(n in chosen)
    _reset_peak()
    before = _vm("VmRSS")
    sample = [min(i, len(frames) - 1) for i in (0, 5, 10)]  # a triplet with adapt's jumps (ae: frame 0)
    ttt.loss(step_model, frames[sample], mask, kind).backward()
    out["step_peak_over_start_mb"] = _vm("VmHWM") - before
    del step_model
    _reset_peak()
    before, c0 = _vm("VmRSS"), time.process_time()
    adapted = ttt.adapt(base, frames, mask, seed=1, **preset)
    out["adapt_peak_mb"], out["adapt_cpu_s"] = _vm("VmHWM"), time.process_time() - c0
    out["adapt_peak_over_start_mb"] = out["adapt_peak_mb"] - before
    _reset_peak()
    before, c0 = _vm("VmRSS"), time.process_time()
    with torch.no_grad():
        probs = adapted.segment(frames, mask, **preset.get("segment", {}))
    out["segment_peak_mb"], out["segment_cpu_s"] = _vm("VmHWM"), time.process_time() - c0
    out["segment_peak_over_start_mb"] = out["segment_peak_mb"] - before
    out["probs_mb"] = probs.nbytes / 2 ** 20
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_segment_memory(impl: str, args) -> dict:
    """Peak memory of STCN inference alone on the real video, in a fresh process: ``one-at-a-time`` is
    ``STCN.segment`` (uint8 frames normalised as each is read), ``whole-video`` normalises every frame
    first (the implementation before), with identical output."""
    from models.stcn.inference import labels_to_onehot

    torch.set_num_threads(args.threads)
    frames, mask, what = memory_video(args.video, args.frames)
    net = golden_init(STCN(), seed=0, s=1.0).eval()
    _reset_peak()
    before = _vm("VmRSS")
    if impl == "one-at-a-time":
        probs = net.segment(frames, mask)
    else:
        onehot, _ = labels_to_onehot(mask)
        probs = torch.stack([p for _, p in net.iter_probabilities(net.prepare(frames), onehot)], 1).numpy()
    return {"impl": impl, "video": what, "peak_over_start_mb": _vm("VmHWM") - before, "probs_mb": probs.nbytes / 2 ** 20,
            "sha256": hashlib.sha256(probs.tobytes()).hexdigest()}


def run_checkpointing(mode: str, args) -> dict:
    """One tt-``kind`` unit in this fresh process, ``mode`` exact or checkpointing: adapt peak/CPU, the
    adapted weights' digest, J&F of its segmentation against the annotations."""
    from davis_c.masks import read_mask
    from harness.metrics import evaluate_video

    torch.set_num_threads(args.threads)
    kind = args.kinds[0]
    frames, mask, what = memory_video(args.video, args.frames)
    jpgs = sorted(Path(args.video).glob("*.jpg"))[:args.frames]
    gt = np.stack([read_mask(Path(str(args.video).replace("JPEGImages", "Annotations")) / f"{j.stem}.png")
                   for j in jpgs])
    gt = (gt > 127).astype(np.uint8) if gt.max() == 255 else gt
    base = golden_init(STCN(), seed=0, s=1.0).eval()
    preset = dict(ttt.load_preset(f"stcn_{kind}"))
    preset.update(rounds=args.rounds, iterations=args.iterations, checkpointing=mode == "checkpointing")
    preset.pop("seed", None)
    _reset_peak()
    before, c0 = _vm("VmRSS"), time.process_time()
    adapted = ttt.adapt(base, frames, mask, seed=1, **preset)
    out = {"mode": mode, "video": what, "adapt_peak_over_start_mb": _vm("VmHWM") - before,
           "adapt_cpu_s": time.process_time() - c0, "losses": adapted.ttt_log["losses"]}
    weights = torch.cat([p.detach().flatten() for p in adapted.parameters()])
    out["weights_sha256"] = hashlib.sha256(weights.numpy().tobytes()).hexdigest()
    np.save(Path(args._out) / f"{mode}.npy", weights.numpy())
    with torch.no_grad():
        probs = adapted.segment(frames, mask, **preset.get("segment", {}))
    scores = evaluate_video(gt, probs.argmax(0).astype(np.uint8))
    out["jf"] = float(scores.jf_mean)
    return out


def checkpointing_report(args) -> None:
    kind = args.kinds[0]
    print(f"tt-{kind} memory mode (activation checkpointing) vs the exact default: STCN golden-init, CPU, "
          f"{args.rounds} x {args.iterations} iterations at resolution 480, {args.threads} thread(s)")
    with tempfile.TemporaryDirectory(prefix="bench_ttt_ck_") as tmp:
        res = {m: _child(args, "--_checkpointing", m, "--kinds", kind, "--rounds", str(args.rounds),
                         "--iterations", str(args.iterations), "--_out", tmp) for m in ("exact", "checkpointing")}
        diff = float(np.abs(np.load(Path(tmp) / "exact.npy") - np.load(Path(tmp) / "checkpointing.npy")).max())
    for m, r in res.items():
        print(f"  {m:>13}: adapt peak +{r['adapt_peak_over_start_mb']:.0f} MiB over its start, "
              f"{r['adapt_cpu_s']:.1f} CPU-s; J&F {100 * r['jf']:.3f} ({r['video']})")
    e, c = res["exact"], res["checkpointing"]
    print(f"  memory {c['adapt_peak_over_start_mb'] / e['adapt_peak_over_start_mb']:.2f}x, CPU time "
          f"{c['adapt_cpu_s'] / e['adapt_cpu_s']:.2f}x of the exact mode; adapted weights "
          + ("bit-identical" if e["weights_sha256"] == c["weights_sha256"] else f"differ (max |d| {diff:.3g})")
          + f"; losses equal: {e['losses'] == c['losses']}; J&F difference {100 * (c['jf'] - e['jf']):+.3f}")


def _child(args, *flags: str) -> dict:
    """Run this script with ``flags`` in a fresh process (its peak memory is its own); its last JSON line."""
    cmd = [sys.executable, __file__, *flags, "--frames", str(args.frames), "--threads", str(args.threads)]
    if args.video is not None:
        cmd += ["--video", str(args.video)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def memory_report(args) -> None:
    print(f"peak memory of one unit per TTT kind (STCN golden-init, CPU, {args.rounds} x {args.iterations} "
          f"iterations, {args.threads} thread(s))")
    for kind in args.kinds:
        r = _child(args, "--_memory", kind, "--rounds", str(args.rounds), "--iterations", str(args.iterations))
        print(f"  tt-{kind}: {r['video']} {tuple(r['shape'])}: frames {r['frames_mb']:.0f} MiB uint8; "
              f"one training step +{r['step_peak_over_start_mb']:.0f} MiB; "
              f"adapt peak {r['adapt_peak_mb']:.0f} MiB RSS (+{r['adapt_peak_over_start_mb']:.0f} over its start, "
              f"{r['adapt_cpu_s']:.0f} CPU-s); segment peak {r['segment_peak_mb']:.0f} MiB "
              f"(+{r['segment_peak_over_start_mb']:.0f}; output {r['probs_mb']:.0f} MiB float32, "
              f"{r['segment_cpu_s']:.0f} CPU-s); process peak {r['peak_rss_mb']:.0f} MiB")
    a, b = (_child(args, "--_segment_memory", impl) for impl in ("one-at-a-time", "whole-video"))
    print(f"  STCN inference alone (fresh process, {a['video']}): +{a['peak_over_start_mb']:.0f} MiB with frames "
          f"normalised one at a time, +{b['peak_over_start_mb']:.0f} MiB with the whole video normalised first "
          f"(output {a['probs_mb']:.0f} MiB float32 either way; identical output: {a['sha256'] == b['sha256']})")


def main(argv: list[str] | None = None) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _device import dispatch  # --device mode: the figures that size a run (benchmarks/_device.py)

    if dispatch("stcn", ["plain", "mcc", "ent", "ae"], argv):
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--memory", action="store_true", help="peak memory per TTT kind instead of the timing")
    ap.add_argument("--kinds", nargs="+", default=["mcc", "ent", "ae"], help="TTT kinds for --memory")
    ap.add_argument("--video", type=Path, default=REAL_VIDEO, help="folder of JPEG frames for --memory")
    ap.add_argument("--_run", metavar="IMPL", help=argparse.SUPPRESS)
    ap.add_argument("--_memory", metavar="KIND", help=argparse.SUPPRESS)
    ap.add_argument("--_segment_memory", metavar="IMPL", help=argparse.SUPPRESS)
    ap.add_argument("--checkpointing", action="store_true",
                    help="the TTT memory mode (activation checkpointing) against the exact default")
    ap.add_argument("--_checkpointing", metavar="MODE", help=argparse.SUPPRESS)
    ap.add_argument("--_out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._checkpointing:
        print(json.dumps(run_checkpointing(args._checkpointing, args)))
        return
    if args.checkpointing:
        given = argv or sys.argv
        args.rounds = args.rounds if "--rounds" in given else 1
        args.iterations = args.iterations if "--iterations" in given else 3
        args.kinds = args.kinds if "--kinds" in given else ["mcc"]
        checkpointing_report(args)
        return
    if args._segment_memory:
        print(json.dumps(run_segment_memory(args._segment_memory, args)))
        return
    if args._memory:
        print(json.dumps(run_memory(args._memory, args)))
        return
    if args.memory:
        if "--rounds" not in (argv or sys.argv):
            args.rounds = 1
        if "--iterations" not in (argv or sys.argv):
            args.iterations = 1
        if "--frames" not in (argv or sys.argv):
            args.frames = 40
        memory_report(args)
        return
    if args._run:
        print(json.dumps(run_one(args._run, args)))
        return
    print(f"tt-MCC protocol, {args.frames} frames 120x216, 2 objects, {args.rounds} rounds x {args.iterations} "
          f"iterations, {args.threads} thread(s)")
    res = {}
    for impl in ("official-style", "ours"):
        cmd = [sys.executable, __file__, "--_run", impl, "--frames", str(args.frames), "--rounds", str(args.rounds),
               "--iterations", str(args.iterations), "--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(out.stderr)
        r = res[impl] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {impl:>15}: protocol {r['protocol_wall_s']:.1f} s wall / {r['protocol_cpu_s']:.1f} s cpu; "
              f"one iteration {r['iter_wall_s']:.2f} s wall / {r['iter_cpu_s']:.2f} s cpu; "
              f"peak RSS {r['peak_rss_mb']:.0f} MB")
    o, u = res["official-style"], res["ours"]
    print(f"  speed-up: protocol {o['protocol_wall_s'] / u['protocol_wall_s']:.2f}x wall, "
          f"{o['protocol_cpu_s'] / u['protocol_cpu_s']:.2f}x cpu; iteration "
          f"{o['iter_wall_s'] / u['iter_wall_s']:.2f}x wall, {o['iter_cpu_s'] / u['iter_cpu_s']:.2f}x cpu")
    print("  golden README (official code, 240x432, 2 threads, idle machine): 10.5 s per tt-MCC iteration, "
          "0.55 s/frame inference")


if __name__ == "__main__":
    main()
