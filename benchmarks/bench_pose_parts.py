"""Benchmark: seconds per frame of CRW's JHMDB pose and VIP part protocols (encoder + propagation + decoding).

Setting: the protocols' own (JHMDB: 320x320 input, 40x40 grid, context 7; VIP: 560x560, 70x70, context 4;
k 10, radius 12, temperature 0.07), the CRW ResNet-18 encoder with golden-init weights (speed does not depend on
the weights), synthetic frames at the datasets' native sizes (JHMDB 320x240; VIP 640x480 here).  Reports the
encoder and the propagation separately, per frame, after one warm-up video.

    python benchmarks/bench_pose_parts.py --frames 16 --threads 1
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import models
    from models.golden_init import golden_init
    from models.labelprop.crop import encode_square
    from models.labelprop.parts import propagate_parts
    from models.labelprop.pose import propagate_keypoints

    model = golden_init(models.load_model("labelprop", encoder="resnet18"), seed=0).to(args.device)
    rng = np.random.default_rng(0)
    out = {"threads": args.threads, "device": args.device, "frames": args.frames}
    for name, (h, w), crop in (("jhmdb", (240, 320), 320), ("vip", (480, 640), 560)):
        frames = rng.integers(0, 256, (args.frames, h, w, 3), dtype=np.uint8)
        if name == "jhmdb":
            joints = rng.uniform(20, 200, (15, 2))
            run = lambda f: propagate_keypoints(model, f, joints, crop=crop, context=7)
        else:
            labels = (rng.integers(0, 20, (h // 40, w // 40)).repeat(40, 0).repeat(40, 1)).astype(np.uint8)
            run = lambda f: propagate_parts(model, f, labels, crop=crop, context=4)
        run(frames[:3])  # warm-up
        t0 = time.perf_counter()
        encode_square(model, frames, crop)
        enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        run(frames)
        total = time.perf_counter() - t0
        out[name] = {"encoder_s_per_frame": enc / args.frames, "total_s_per_frame": total / args.frames,
                     "propagation_and_decoding_s_per_frame": (total - enc) / args.frames}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
