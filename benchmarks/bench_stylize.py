"""Speed of the neural-style transformer (DAVIS-C style1..4), seconds per frame.

    python benchmarks/bench_stylize.py                 # 240x427 frames (quarter DAVIS size), short
    python benchmarks/bench_stylize.py --full          # 480x854 DAVIS frames
    python benchmarks/bench_stylize.py --batch 1 2 4 --device cuda --frames 16

Compares, in the same run and on the same random weights and frames, our pipeline
(``StyleTransfer.stylize_pair``: inference mode, channels-last, fused instance norm, uint8 for all
three strengths from one pass) with a straightforward port (NCHW, autograd ``no_grad``, instance norm
composed from mean/var as written in the spec, plain interpolate + pad + conv; network only, no
colour step).  The spec measured ~7.7 s per 480x854 frame for such a port on this machine's CPU.
The style predictor runs once per style image (cached) and is timed separately.  On a machine
whose cores are busy with other work, set OMP_NUM_THREADS=1: OpenMP threads waiting for a
descheduled partner inflate both wall and CPU time of every small op.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # refdata: tests/data or $DAVIS_C_SHARED

from davis_c.stylize import StyleNet, StyleTransfer, read_style_image  # noqa: E402
from davis_c.stylize.architecture import EXPAND, RESIDUAL  # noqa: E402
from refdata import reference_path  # noqa: E402

STYLE = reference_path("davis_c_styles/1.png")


def naive_stylize(net: StyleNet, content: torch.Tensor, params) -> torch.Tensor:
    """The transformer written plainly from the spec (reference for the ratio)."""
    def conv(x, w, stride=1):
        p = w.shape[-1] // 2
        return F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), w, stride=stride)

    def cin(x, g, b):
        m = x.mean(dim=(2, 3), keepdim=True)
        v = ((x - m) ** 2).mean(dim=(2, 3), keepdim=True)
        return g[:, :, None, None] * (x - m) / torch.sqrt(v + 1e-5) + b[:, :, None, None]

    t = net.transformer
    x = content
    for name in t.contract:
        unit = t.contract[name]
        x = F.relu(unit.bn(conv(x, unit.weight, unit.stride)))
    it = iter(params)
    for r in RESIDUAL:
        g1, b1 = next(it)
        g2, b2 = next(it)
        y = F.relu(cin(conv(x, t.residual[r]["conv1"].weight), g1, b1))
        x = x + cin(conv(y, t.residual[r]["conv2"].weight), g2, b2)
    for i, (spec, up) in enumerate(EXPAND):
        if up > 1:
            x = F.interpolate(x, scale_factor=up, mode="nearest")
        g, b = next(it)
        x = cin(conv(x, t.expand[spec.name]["conv"].weight), g, b)
        x = torch.sigmoid(x) if i == len(EXPAND) - 1 else F.relu(x)
    return x


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): CPU time is steadier on a shared machine."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="480x854 frames (default 240x427)")
    ap.add_argument("--frames", type=int, default=4, help="frames per timed call (default 4)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats, medians reported (default 3)")
    ap.add_argument("--batch", type=int, nargs="+", help="batch sizes to try for ours (default: 1, --frames, automatic)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-reference", action="store_true", help="skip the straightforward port")
    args = ap.parse_args(argv)

    h, w = (480, 854) if args.full else (240, 427)
    device = torch.device(args.device)
    net = StyleNet(seed=0)
    frames = np.random.default_rng(0).integers(0, 256, (args.frames, h, w, 3), dtype=np.uint8)
    style = read_style_image(STYLE)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}; "
          f"{args.frames} frames of {h}x{w}, median of {args.repeats}")

    # reference and ours alternate within every repeat, so load changes on a shared machine hit both;
    # we report medians of the per-frame times and of the per-repeat ratios
    ref_net = StyleNet(seed=0).to(device)
    ref_params = StyleTransfer(ref_net, device=device, channels_last=False).style_params(style)
    x = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float().contiguous() / 255

    def run_ref():
        with torch.no_grad():
            for i in range(len(x)):
                naive_stylize(ref_net, x[i:i + 1], ref_params)
        if device.type == "cuda":
            torch.cuda.synchronize()

    st = StyleTransfer(net, device=device)
    t0 = time.perf_counter()
    st.style_params(style)
    print(f"style predictor, 630x800  : {time.perf_counter() - t0:7.3f} s once per style image (cached)")

    def run_ours(b):
        st.batch_size = b
        st.stylize_pair(frames, style)

    if not args.batch:
        args.batch = sorted({1, len(frames), min(len(frames), st.auto_batch_size(h, w))})
    if not args.no_reference:
        run_ref()                                            # warm-up
    for b in args.batch:
        st.batch_size = b
        st.stylize_pair(frames[:b], style)                   # warm-up
    ref_t, ours_t = [], {b: [] for b in args.batch}
    for _ in range(args.repeats):
        if not args.no_reference:
            ref_t.append(np.array(timed(run_ref)) / len(frames))
        for b in args.batch:
            ours_t[b].append(np.array(timed(lambda: run_ours(b))) / len(frames))
    def med(values):
        return np.median(np.stack(values), axis=0)

    if ref_t:
        w, c = med(ref_t)
        print(f"straightforward port       : {w:7.3f} s/frame wall, {c:7.3f} CPU-s/frame")
    for b in args.batch:
        w, c = med(ours_t[b])
        ratio = ""
        if ref_t:
            rw, rc = med([r / o for r, o in zip(ref_t, ours_t[b])])
            ratio = f"  speed-up x{rw:.2f} wall, x{rc:.2f} CPU vs straightforward port"
        print(f"ours (batch {b:2d}, 3 strengths): {w:7.3f} s/frame wall, {c:7.3f} CPU-s/frame{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
