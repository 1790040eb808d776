"""Cost of verify-on-read (SHA-256 of every stored frame) next to decoding the frame, at DAVIS size.

    python benchmarks/bench_verify.py [--frames 60] [--repeat 5]

Frames are the real DAVIS-2016 480p JPEGs in ``shared/real_davis16`` (854x480), as the store keeps them
(the clean shard stores the original files; corrupted shards JPEG quality 95 like the official generator,
so the real frames are also re-encoded at q95 and measured).  For each set it prints the median per-frame
time of ``hashlib.sha256(bytes)`` (what ``DavisCStore.images`` adds per frame), of ``cv2.imdecode`` (what a
read does anyway), and their ratio; then the same through the store: a read of a whole video with
verification vs the decoding alone.  All timings are measured in this run, on this machine.
"""
from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from davis_c.codec import decode_image, encode_image  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared" / "real_davis16" / "JPEGImages" / "480p"


def _frames(n: int) -> list[bytes]:
    files = sorted(REAL.rglob("*.jpg"))[:n]
    if files:
        return [p.read_bytes() for p in files]
    # no shared data: smooth synthetic 480x854 frames with texture (JPEG sizes like DAVIS's)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:480, :854]
    out = []
    for i in range(n):
        base = (np.sin(xx / (30 + i)) * 60 + np.cos(yy / 17) * 60 + 128)[..., None] + rng.normal(0, 12, (480, 854, 3))
        out.append(encode_image(np.clip(base, 0, 255).astype(np.uint8), "jpeg"))
    return out


def _per_frame(fn, items, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for x in items:
            fn(x)
        runs.append((time.perf_counter() - t0) / len(items))
    return statistics.median(runs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=60, help="frames to time (default 60)")
    p.add_argument("--repeat", type=int, default=5, help="repetitions; the median is reported (default 5)")
    args = p.parse_args(argv)
    originals = _frames(args.frames)
    shape = decode_image(originals[0]).shape
    q95 = [encode_image(decode_image(b), "jpeg") for b in originals]
    print(f"{len(originals)} frames of {shape[1]}x{shape[0]} "
          f"({'real DAVIS-2016' if REAL.is_dir() else 'synthetic'}); median of {args.repeat} runs")
    print(f"{'frames':<22} {'KiB/frame':>9} {'sha256 ms':>10} {'decode ms':>10} {'ratio':>7}")
    for label, items in (("original JPEG (clean)", originals), ("JPEG q95 (corrupted)", q95)):
        h = _per_frame(lambda b: hashlib.sha256(b).hexdigest(), items, args.repeat)
        d = _per_frame(lambda b: decode_image(b), items, args.repeat)
        kib = np.mean([len(b) for b in items]) / 1024
        print(f"{label:<22} {kib:>9.1f} {1e3 * h:>10.3f} {1e3 * d:>10.3f} {h / d:>6.1%}")

    # end to end through the store: verified read vs decoding alone
    from davis_c.store import ShardWriter, write_index, DavisCStore, FORMAT

    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "bench.h5"
        masks = np.zeros((len(originals), *shape[:2]), np.uint8)
        masks[:, 100:200, 100:300] = 1
        common = {"format": FORMAT, "build_key": "bench"}
        with ShardWriter(Path(tmp) / "bench_shards" / "clean.h5", common | {"kind": "clean", "variant": "clean"}) as w:
            w.add_video("v", originals, {"frame_names": [f"{i:05d}" for i in range(len(originals))],
                                         "object_ids": [1]}, masks=masks)
            w.commit()
        write_index(index, common | {"videos": ["v"], "corruptions": [], "strengths": []}, [(None, None)])
        with DavisCStore(index) as store:
            read = []
            decode = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                store.frames(None, None, "v")
                read.append(time.perf_counter() - t0)
                raw = [bytes(x) for x in store._f["clean"]["v"]["frames"][()]]
                t0 = time.perf_counter()
                np.stack([decode_image(b) for b in raw])
                decode.append(time.perf_counter() - t0)
        r, d = statistics.median(read), statistics.median(decode)
        print(f"store read of {len(originals)} frames: verified {1e3 * r / len(originals):.3f} ms/frame, "
              f"decoding alone {1e3 * d / len(originals):.3f} ms/frame: verified read / decoding = {r / d:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
