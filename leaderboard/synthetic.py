"""Write a synthetic results tree in the layout ``harness.run`` writes, for tests and demos.

Real results take GPU hours; the leaderboard's tables, plots and report can be exercised (and
shown in the README) on made-up numbers with the same layout. Every run.json written here says
``"synthetic": true`` and the report shows a banner for it, so demo numbers are never mistaken for
measurements.

    python -m leaderboard.synthetic --out demo_results/
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from common.cli import cli_main, prog
from common.vocabulary import CLEAN, CORRUPTION_NAMES as CORRUPTIONS, STRENGTHS, make_variant, parse_variant
from harness.results import UNIT_SCHEMA, write_json_atomic

__all__ = ["DEFAULT_VIDEOS", "PAPER_NAMES", "unit_record", "make_synthetic_results", "main"]

#: the paper's row names of the shipped presets (as in harness/methods/*.yaml), so the demo shows ours vs paper.
PAPER_NAMES = {"stcn": "STCN", "stcn+mcc": "STCN+tt-MCC", "xmem": "XMem", "xmem+mcc": "XMem+tt-MCC"}

DEFAULT_VIDEOS: dict[str, int] = {"blackswan": 1, "dog": 1, "judo": 2, "india": 3, "pigs": 3, "soapbox": 3}
_STRENGTH_DROP = {"low": 0.12, "med": 0.2, "high": 0.3}


def unit_record(method: str, variant: str, video: str, seed: int, per_frame_j: np.ndarray,
                per_frame_f: np.ndarray, *, random_init: bool = False, status: str = "ok",
                error: str | None = None) -> dict[str, Any]:
    """A ``davis-c-unit/1`` record (as ``harness.run`` writes) from per-frame J and F arrays (objects, frames)."""
    strength, corruption = parse_variant(variant)
    objects = []
    for k, (j, f) in enumerate(zip(per_frame_j, per_frame_f), start=1):
        objects.append({"id": k, "J": float(j.mean()), "F": float(f.mean()),
                        "JF": float((j.mean() + f.mean()) / 2),
                        "J_recall": float((j > 0.5).mean()), "J_decay": float(j[: len(j) // 4 + 1].mean() - j[-(len(j) // 4 + 1):].mean()),
                        "F_recall": float((f > 0.5).mean()), "F_decay": float(f[: len(f) // 4 + 1].mean() - f[-(len(f) // 4 + 1):].mean())})
    ok = status == "ok"
    J = float(np.mean([o["J"] for o in objects])) if ok else None
    F = float(np.mean([o["F"] for o in objects])) if ok else None
    return {
        "schema": UNIT_SCHEMA, "method": method, "variant": variant, "strength": strength,
        "corruption": corruption, "video": video, "seed": seed, "status": status, "error": error,
        "random_init": random_init, "objects": objects if ok else [],
        "J": J, "F": F, "JF": (J + F) / 2 if ok else None,
        "n_frames": int(per_frame_j.shape[1]) + 2 if ok else None,
        "per_frame": {"J": per_frame_j.round(6).tolist(), "F": per_frame_f.round(6).tolist()} if ok else {"J": [], "F": []},
        "timing": {"ttt_s": 0.0 if "+" not in method else 1.5, "inference_s": 0.4, "fps": 25.0},
        "peak_memory_mb": 512.0,
    }


def make_synthetic_results(
    out: str | Path,
    *,
    methods: dict[str, dict[str, Any]] | None = None,
    videos: dict[str, int] | None = None,
    corruptions: Sequence[str] = CORRUPTIONS,
    strengths: Sequence[str] = STRENGTHS,
    frames: int = 20,
    seed: int = 0,
    failed: Iterable[tuple[str, str, str, int]] = (),
    missing: Iterable[tuple[str, str, str, int]] = (),
) -> Path:
    """Write a deterministic synthetic results tree under ``out`` and return it.

    ``methods`` maps a method name to ``{"seeds": [...], "random_init": bool, "quality": float,
    "ttt_gain": float, "paper_name": str | None}`` (``paper_name`` defaults to :data:`PAPER_NAMES`); ``failed`` / ``missing`` list (method, variant, video, seed) units to write
    as failed or to leave out. ``videos`` maps a video to its number of objects.
    """
    out = Path(out)
    methods = methods or {
        "stcn": {"seeds": [0], "quality": 0.82},
        "stcn+mcc": {"seeds": [0, 1, 2], "quality": 0.82, "ttt_gain": 0.05},
        "xmem": {"seeds": [0], "quality": 0.85},
        "xmem+mcc": {"seeds": [0, 1, 2], "quality": 0.85, "ttt_gain": 0.04},
    }
    videos = videos or DEFAULT_VIDEOS
    failed = {tuple(u) for u in failed}
    missing = {tuple(u) for u in missing}
    variants = [CLEAN] + [make_variant(s, c) for s in strengths for c in corruptions]
    rng = np.random.default_rng(seed)
    # per (video, variant) difficulty shared by all methods, so TTT gains are comparable per video
    difficulty = {(v, var): rng.uniform(-0.08, 0.08) for v in videos for var in variants}
    corruption_hardness = {c: rng.uniform(0.3, 1.3) for c in corruptions}
    for mi, (method, spec) in enumerate(methods.items()):
        base = method.rsplit("+", 1)[0]
        cfg = {"description": "SYNTHETIC demo method (made-up numbers)", "model": base, "checkpoint": f"{base}.pth",
               "load": {}, "segment": {}, "ttt": (method.rsplit("+", 1)[1] if "+" in method else None),
               "random_init_scale": 1.0, "paper_name": spec.get("paper_name", PAPER_NAMES.get(method)),
               "published": spec.get("published", [])}
        write_json_atomic(out / method / "run.json", {
            "method": method, "config": cfg, "toolkit_version": "synthetic",
            "checkpoint": None if spec.get("random_init") else f"saves/{base}.pth",
            "checkpoint_sha256": None if spec.get("random_init") else f"{mi:02d}" + "ab" * 31,
            "random_init": bool(spec.get("random_init", False)), "device": "synthetic",
            "seeds": list(spec["seeds"]), "variants": variants, "videos": list(videos),
            "created": "2026-01-01T00:00:00+00:00", "synthetic": True,
        })
        for var in variants:
            s, c = parse_variant(var)
            drop = 0.0 if s is None else _STRENGTH_DROP.get(s, 0.2) * corruption_hardness[c]
            for video, n_obj in videos.items():
                for sd in spec["seeds"]:
                    key = (method, var, video, int(sd))
                    if key in missing:
                        continue
                    level = spec.get("quality", 0.8) - drop + difficulty[(video, var)]
                    if "+" in method and var != "clean":
                        level += spec.get("ttt_gain", 0.0) * (1 + rng.normal(0, 1.5))
                    urng = np.random.default_rng([seed, mi, variants.index(var), list(videos).index(video), int(sd)])
                    trend = np.linspace(0.04, -0.04, frames)
                    j = np.clip(level + trend + urng.normal(0, 0.04, (n_obj, frames)), 0, 1)
                    f = np.clip(j + 0.03 + urng.normal(0, 0.02, (n_obj, frames)), 0, 1)
                    status, err = ("failed", "RuntimeError: synthetic failure") if key in failed else ("ok", None)
                    rec = unit_record(method, var, video, int(sd), j, f, random_init=bool(spec.get("random_init")),
                                      status=status, error=err)
                    write_json_atomic(out / method / var / video / f"seed{sd}.json", rec)
    return out


@cli_main("leaderboard.synthetic", "nothing half-written is kept; rerun the same command")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog("leaderboard.synthetic", "leaderboard-synthetic"),
        description="Write a results tree of SYNTHETIC, made-up numbers (the layout harness.run writes: "
                    "<method>/run.json and <method>/<variant>/<video>/seed<N>.json; every run.json says "
                    "\"synthetic\": true and the report shows a banner) to try the leaderboard without running "
                    "any model.",
        epilog="example:\n  leaderboard-synthetic --out demo_results/\n"
               "  leaderboard-build --results demo_results/ --out demo_leaderboard/   # open demo_leaderboard/index.html",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder to write the results tree into")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the made-up numbers (default 0)")
    parser.add_argument("--frames", type=int, default=20, help="evaluated frames per video (default 20)")
    args = parser.parse_args(argv)
    path = make_synthetic_results(args.out, seed=args.seed, frames=args.frames)
    print(f"synthetic results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
