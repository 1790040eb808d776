"""STCN inference speed and peak memory, ours against the official code (``--official PATH``) or an
official-style loop, 2 objects.

    python benchmarks/bench_stcn.py                      # 240x432 and 480x864, 12 frames, 1 thread
    python benchmarks/bench_stcn.py --frames 6 --sizes 240x432 --threads 2
    python benchmarks/bench_stcn.py --official ~/src/STCN --threads 2

The video is the 240x432 golden video (``tests/golden/stcn/inference.npz``), upsampled 2x for
480x864 as in the golden README; weights are golden-init (the cost depends on the architecture,
not on the weights).  Each measurement runs in its own process (so peak RSS is its own):

* ``ours``: ``STCN.segment`` (inference mode, keys once per frame, shared query features
  convolved once for all objects, sparse top-k readout, preallocated memory, CPU output buffer);
* ``official-style``: the same weights driven the way the official ``InferenceCore`` does it
  (no_grad, dense affinity scattered from the top-k and multiplied with every memory value, memory
  grown by concatenation, |m|^2 recomputed per query, the frame and key features replicated per
  object before the value encoder and the decoder, a (K+1, T, 1, H, W) probability buffer, then
  unpad / resize / argmax per frame).  Its outputs are checked against ours.  Our stand-in: used
  without ``--official``;
* ``official`` (``--official PATH``, a checkout of hkchengrex/STCN): the official ``model.eval_network.STCN``
  given our golden-init weights (``load_state_dict``, strict) and driven by its ``InferenceCore`` exactly
  as ``eval_davis.py`` does (interact on frame 0, then unpad / resize / argmax per frame; inputs as its
  dataset makes them: ImageNet-normalised frames, one-hot first mask).  That code is CUDA-only
  (``.cuda()`` calls, a ``device='cuda'`` buffer): in the child ``Tensor.cuda`` returns the tensor itself
  and the ``InferenceCore`` is constructed with ``cuda`` devices mapped to the CPU.  Construction
  downloads nothing: the ImageNet fetch is skipped and, where ``torchvision`` is not installed, its
  ``resnet50`` (the key encoder's trunk) is the official ``model/mod_resnet.py`` one without conv biases,
  layer for layer torchvision's; our weights then set every parameter (strict load).  Nothing of the inference is changed.

Printed: seconds per frame (wall and process CPU -- the CPU time is the fairer number on a
shared machine), their ratio, peak RSS, and the official timings the golden README measured on
this machine type (0.55 / 2.33 s per frame with 2 threads, 1.10 / 4.40 with 1 thread).
"""
from __future__ import annotations

import argparse
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # refdata: tests/golden or $DAVIS_C_SHARED

from models import golden_init  # noqa: E402
from models.stcn import STCN  # noqa: E402
from models.aggregate import aggregate  # noqa: E402
from models.imagenet import normalise  # noqa: E402
from models.padding import pad_divide_by  # noqa: E402
from models.stcn.inference import labels_to_onehot  # noqa: E402
from refdata import reference_path  # noqa: E402

GOLDEN = reference_path("golden/stcn/inference.npz")
MARKER = "model/eval_network.py"
OFFICIAL = {"240x432": {2: 0.55, 1: 1.10}, "480x864": {2: 2.33, 1: 4.40}}  # golden README, s/frame


def load_video(size: str, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    z = np.load(GOLDEN)
    frames, mask = z["frames"][:n_frames], z["first_mask"]
    if size == "480x864":
        frames = frames.repeat(2, axis=1).repeat(2, axis=2)
        mask = mask.repeat(2, axis=0).repeat(2, axis=1)
    elif size != "240x432":
        raise SystemExit(f"unknown size {size}; use 240x432 or 480x864")
    return frames, mask


# ----------------------------------------------------------------------------- official-style loop
def _ref_value(net: STCN, image, f16, masks):
    k = masks.shape[0]
    others = (torch.cat([masks[[j for j in range(k) if j != i]].sum(0, keepdim=True) for i in range(k)])
              if k > 1 else torch.zeros_like(masks))
    ve = net.value_encoder
    x = ve.conv1(torch.cat([image.repeat(k, 1, 1, 1), masks, others], 1))
    x = ve.layer3(ve.layer2(ve.layer1(ve.maxpool(ve.relu(ve.bn1(x))))))
    x = ve.fuser.block1(torch.cat([x, f16.repeat(k, 1, 1, 1)], 1))
    x = ve.fuser.block2(x + ve.fuser.attention(x))
    return x.unsqueeze(2)


def _ref_decode(net: STCN, readout, f16_thin, f8, f4):
    d = net.decoder
    x = d.compress(torch.cat([readout, f16_thin.expand(readout.shape[0], -1, -1, -1)], 1))
    x = d.up_8_4(f4, d.up_16_8(f8, x))
    return F.interpolate(d.pred(F.relu(x)), scale_factor=4, mode="bilinear", align_corners=False)


def official_style(net: STCN, frames: np.ndarray, mask: np.ndarray, top_k=20, mem_every=5) -> np.ndarray:
    with torch.no_grad():
        dev = next(net.parameters()).device  # the loop runs where the network is (bench --device)
        onehot, _ = labels_to_onehot(mask)
        images, pad = pad_divide_by(normalise(frames).to(dev), 16)
        masks, _ = pad_divide_by(onehot.to(dev).unsqueeze(1), 16)
        k, t = masks.shape[0], images.shape[0]
        prob = torch.zeros((k + 1, t, 1, *images.shape[-2:]), device=dev)
        prob[0] = 1e-7
        prob[:, 0] = torch.softmax(aggregate(masks), 0)
        key_encode = lambda i: net.encode_key(images[i:i + 1])  # noqa: E731
        k16, _, f16, _, _ = key_encode(0)
        mem_k = k16.flatten(2)
        mem_v = _ref_value(net, images[:1], f16, prob[1:, 0]).flatten(2)
        h, w = k16.shape[-2:]
        for ti in range(1, t):
            k16, f16_thin, f16, f8, f4 = key_encode(ti)
            qk = k16.flatten(2)
            a_sq = mem_k.pow(2).sum(1).unsqueeze(2)
            affinity = (2 * (mem_k.transpose(1, 2) @ qk) - a_sq) / math.sqrt(mem_k.shape[1])
            values, indices = torch.topk(affinity, k=top_k, dim=1)
            x_exp = values.exp_()
            x_exp /= x_exp.sum(1, keepdim=True)
            affinity.zero_().scatter_(1, indices, x_exp)
            readout = torch.bmm(mem_v, affinity.expand(k, -1, -1)).view(k, -1, h, w)
            out = torch.softmax(aggregate(torch.sigmoid(_ref_decode(net, readout, f16_thin, f8, f4))), 0)
            prob[:, ti] = out
            if ti != t - 1 and ti % mem_every == 0:
                mem_k = torch.cat([mem_k, k16.flatten(2)], 2)
                mem_v = torch.cat([mem_v, _ref_value(net, images[ti:ti + 1], f16, out[1:]).flatten(2)], 2)
        left, right, top, bottom = pad
        result = np.empty((k + 1, t, *frames.shape[1:3]), np.float32)
        labels = []
        for ti in range(t):
            p = prob[:, ti, :, top:prob.shape[-2] - bottom, left:prob.shape[-1] - right]
            p = F.interpolate(p, frames.shape[1:3], mode="bilinear", align_corners=False)
            labels.append(p.argmax(0))
            result[:, ti] = p[:, 0].float().cpu().numpy()
        return result


# ----------------------------------------------------------------------------- one measurement
def official_stcn(ours: STCN):
    """A function (frames, mask) -> (K+1, T, H, W) probabilities running the official code as
    ``eval_davis.py`` does (the checkout is first on sys.path)."""
    import importlib.util
    import types

    from _official import cuda_on_cpu
    import model.mod_resnet as mod_resnet

    # construction without downloads (the checkpoint below sets every weight): no ImageNet fetch, and
    # torchvision's resnet50 (the key encoder's trunk) stood in by the official mod_resnet's identical one
    mod_resnet.model_zoo.load_url = lambda *a, **k: {}
    mod_resnet.load_weights_sequential = lambda *a, **k: None
    def resnet50(pretrained=False):
        net = mod_resnet.resnet50(pretrained=False)
        for m in net.modules():  # torchvision's convolutions have no bias; otherwise the same network
            if isinstance(m, torch.nn.Conv2d):
                m.register_parameter("bias", None)
        return net

    if importlib.util.find_spec("torchvision") is None:  # an installed torchvision is used as it is
        vision = types.ModuleType("torchvision")
        vision.models = types.SimpleNamespace(resnet50=resnet50)
        sys.modules["torchvision"] = vision
    else:  # its resnet50(pretrained=True) would download: the checkpoint sets every weight anyway
        import torchvision.models

        torchvision.models.resnet50 = lambda pretrained=False, _build=torchvision.models.resnet50: _build()
    from inference_core import InferenceCore
    from model.eval_network import STCN as OfficialSTCN

    torch.Tensor.cuda = lambda self, *a, **k: self  # the official inference is CUDA-only (see the docstring)
    net = OfficialSTCN().eval()
    net.load_state_dict(ours.state_dict())  # strict: every key of the official network, none left over

    def run(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            rgb = normalise(frames)[None]  # (1, T, 3, H, W), ToTensor + im_normalization
            onehot, _ = labels_to_onehot(mask)
            with cuda_on_cpu():
                core = InferenceCore(net, rgb, onehot.shape[0], top_k=20, mem_every=5, include_last=False)
            core.interact(onehot[:, None], 0, rgb.shape[1])
            out = np.empty((core.k + 1, core.t, *frames.shape[1:3]), np.float32)
            left, right, top, bottom = core.pad
            for ti in range(core.t):
                p = core.prob[:, ti, :, top:core.prob.shape[-2] - bottom, left:core.prob.shape[-1] - right]
                p = F.interpolate(p, frames.shape[1:3], mode="bilinear", align_corners=False)
                p.argmax(0)  # as eval_davis.py: the label map is part of the timed work
                out[:, ti] = p[:, 0].numpy()
            return out
    return run


def run_one(impl: str, size: str, n_frames: int, threads: int, out_dir: Path) -> dict:
    torch.set_num_threads(threads)
    frames, mask = load_video(size, n_frames)
    net = golden_init(STCN(), seed=0, s=1.0).eval()
    fn = {"ours": lambda: net.segment, "official-style": lambda: (lambda f, m: official_style(net, f, m)),
          "official": lambda: official_stcn(net)}[impl]()
    fn(frames[:2], mask)  # warm-up (allocator, kernels)
    wall, cpu = time.perf_counter(), time.process_time()
    probs = fn(frames, mask)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    np.save(out_dir / f"{impl}_{size}.npy", probs[:, :, ::4, ::4])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"wall_s_per_frame": wall / n_frames, "cpu_s_per_frame": cpu / n_frames, "peak_rss_mb": peak_mb}


def main(argv: list[str] | None = None) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _device import dispatch  # --device mode: the figures that size a run (benchmarks/_device.py)

    if dispatch("stcn", ["plain"], argv):
        return
    from _official import add_json_argument, add_official_argument, checkout
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["240x432", "480x864"])
    ap.add_argument("--frames", type=int, default=12, help="frames of the video (max 12)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per measurement")
    ap.add_argument("--_run", nargs=2, metavar=("IMPL", "SIZE"), help=argparse.SUPPRESS)
    ap.add_argument("--_out", type=Path, help=argparse.SUPPRESS)
    add_official_argument(ap, "hkchengrex/STCN", MARKER)
    add_json_argument(ap)
    args = ap.parse_args(argv)
    if args._run:
        print(json.dumps(run_one(args._run[0], args._run[1], args.frames, args.threads, args._out)))
        return
    args.official = checkout(args.official, MARKER, ap)
    if not GOLDEN.is_file():
        raise SystemExit(f"golden video not found: {GOLDEN} (tests/golden, or set DAVIS_C_SHARED)")
    with tempfile.TemporaryDirectory(prefix="bench_stcn_") as tmp:  # private: two runs never collide
        _compare(args, Path(tmp))


def _compare(args: argparse.Namespace, tmp: Path) -> None:
    from _official import agreement, child_env, commit_of, record, reference_line

    ref = "official" if args.official else "official-style"
    print(f"STCN inference, 2 objects, {args.frames} frames, {args.threads} thread(s); s/frame wall | cpu")
    print(reference_line(args.official, "official-style: the official InferenceCore's algorithm re-enacted on our "
                                        "network"))
    for size in args.sizes:
        res = {}
        for impl in (ref, "ours"):
            out = subprocess.run([sys.executable, __file__, "--frames", str(args.frames), "--threads",
                                  str(args.threads), "--_run", impl, size, "--_out", str(tmp)],
                                 capture_output=True, text=True, env=child_env(args.official))
            if out.returncode:
                raise SystemExit(out.stderr)
            res[impl] = json.loads(out.stdout.strip().splitlines()[-1])
            r = res[impl]
            print(f"  {size} {impl:>15}: {r['wall_s_per_frame']:.3f} | {r['cpu_s_per_frame']:.3f} s/frame, "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB")
        a, b = np.load(tmp / f"{ref}_{size}.npy"), np.load(tmp / f"ours_{size}.npy")
        agree = agreement(a.argmax(0), b.argmax(0))
        ratio_w = res[ref]["wall_s_per_frame"] / res["ours"]["wall_s_per_frame"]
        ratio_c = res[ref]["cpu_s_per_frame"] / res["ours"]["cpu_s_per_frame"]
        off = OFFICIAL[size].get(args.threads)
        print(f"  {size} speed-up ours vs {ref}: {ratio_w:.2f}x wall, {ratio_c:.2f}x cpu; "
              f"max |dp| {np.abs(a - b).max():.2g}; label maps (every 4th pixel) "
              f"{100 * agree['equal_fraction']:.4f} % equal; golden README official: "
              f"{off if off is not None else 'n/a'} s/frame at {args.threads} thread(s)")
        record(args.json, model="stcn", threads=args.threads, size=size, frames=args.frames,
               ours_s=res["ours"]["wall_s_per_frame"], reference_s=res[ref]["wall_s_per_frame"], ratio=ratio_w,
               ours_mb=res["ours"]["peak_rss_mb"], reference_mb=res[ref]["peak_rss_mb"], reference=ref,
               commit=commit_of(args.official) if args.official else None,
               equal_fraction=agree["equal_fraction"], pixels_differ=agree["pixels_differ"],
               note="label maps compared on every 4th pixel")


if __name__ == "__main__":
    main()
