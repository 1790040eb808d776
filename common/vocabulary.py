"""The benchmark's vocabulary: strengths, corruption names and kinds, variant strings.

Every package reads these names from here (the builder, the harness and the leaderboard alike), so a
strength or a corruption is spelled, ordered and parsed one way.

* :data:`STRENGTHS` -- DAVIS-C strength name -> ImageNet-C severity, in increasing order
  (``low`` = 3, ``med`` = 4, ``high`` = 5);
* :data:`CORRUPTION_KINDS` -- the 14 DAVIS-C corruptions in the official generator's order
  (``DAVIS-C/davisc_create.py``) -> their kind: ``image`` (frame by frame), ``temporal`` (needs the previous
  frames), ``video`` (whole-video codec), ``neural`` (style transfer, needs its weights);
  :data:`CORRUPTION_NAMES` is that order as a tuple;
* a *variant* is ``"clean"`` or ``"<strength>/<corruption>"``: :func:`make_variant` writes one,
  :func:`parse_variant` reads one, :func:`variant_sort_key` orders them (clean first, strengths low to high,
  corruptions in the official order; names this vocabulary does not know come after, by name);
* :data:`SUITES` -- the benchmarks a store can hold: ``davis-c`` (the paper's 14 x 3, :data:`CORRUPTION_NAMES`)
  and ``temporal`` (:data:`TEMPORAL_CORRUPTIONS`, corruptions over time, never averaged with DAVIS-C);
  :func:`suite_of` says which one a corruption belongs to.  Temporal variants are spelled like DAVIS-C's
  (``"high/freeze"``) and sort after them.

The implementations of the corruptions live in :mod:`davis_c.corruptions`, which checks at import that its
registry holds exactly these names and kinds.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

__all__ = ["JHMDB_JOINTS", "SUITES", "DAVIS_C_SUITE", "TEMPORAL_SUITE", "TEMPORAL_CORRUPTIONS", "suite_of",
           "STRENGTHS", "KINDS", "CORRUPTION_KINDS", "CORRUPTION_NAMES", "WEIGHT_FREE_CORRUPTIONS", "CLEAN",
           "VariantError", "make_variant", "parse_variant", "variant_sort_key", "strength_rank",
           "corruption_rank"]

#: DAVIS-C strength name -> ImageNet-C severity, in increasing severity
STRENGTHS: Mapping[str, int] = MappingProxyType({"low": 3, "med": 4, "high": 5})

#: corruption kinds, in the order the registry lists them
KINDS: tuple[str, ...] = ("image", "temporal", "video", "neural")

#: the 14 DAVIS-C corruptions in the official generator's order -> kind
CORRUPTION_KINDS: Mapping[str, str] = MappingProxyType({
    "gaussian_noise": "image", "contrast": "image", "brightness": "image", "saturate": "image",
    "glass_blur": "image", "defocus_blur": "image", "pixelate": "image", "cartoon": "image",
    "motion_blur": "temporal", "crf_compression": "video",
    "style1": "neural", "style2": "neural", "style3": "neural", "style4": "neural",
})
CORRUPTION_NAMES: tuple[str, ...] = tuple(CORRUPTION_KINDS)

#: the corruptions that need no style-transfer weights (a build without them has exactly these 10)
WEIGHT_FREE_CORRUPTIONS: tuple[str, ...] = tuple(n for n, k in CORRUPTION_KINDS.items() if k != "neural")

#: the benchmarks (suites) of corruptions a store can hold
DAVIS_C_SUITE = "davis-c"
TEMPORAL_SUITE = "temporal"
SUITES: tuple[str, ...] = (DAVIS_C_SUITE, TEMPORAL_SUITE)

#: the temporal suite (davis_c.corruptions.temporal_suite), in its order; none is a DAVIS-C corruption
TEMPORAL_CORRUPTIONS: tuple[str, ...] = ("freeze", "stride", "bursts_gaussian_noise", "bursts_defocus_blur",
                                         "packet_loss", "flicker", "shake")


def suite_of(corruption: str | None) -> str | None:
    """``"davis-c"`` for the 14 DAVIS-C corruptions, ``"temporal"`` for the temporal suite, None otherwise
    (and for the clean variant's None)."""
    if corruption in CORRUPTION_KINDS:
        return DAVIS_C_SUITE
    if corruption in TEMPORAL_CORRUPTIONS:
        return TEMPORAL_SUITE
    return None


#: the variant of the unmodified videos
CLEAN = "clean"


class VariantError(ValueError):
    """A variant string that is neither ``"clean"`` nor ``"<strength>/<corruption>"``."""


def make_variant(strength: str | None = None, corruption: str | None = None) -> str:
    """``make_variant()`` -> ``"clean"``; ``make_variant("high", "glass_blur")`` -> ``"high/glass_blur"``."""
    if strength is None and corruption is None:
        return CLEAN
    for part in (strength, corruption):
        if not part or "/" in part:
            raise VariantError(f"variant ({strength!r}, {corruption!r}): expected a strength and a corruption, "
                               "each a non-empty name without '/'")
    return f"{strength}/{corruption}"


def parse_variant(variant: str) -> tuple[str | None, str | None]:
    """``"clean"`` -> (None, None); ``"high/glass_blur"`` -> ("high", "glass_blur")."""
    if variant == CLEAN:
        return None, None
    parts = variant.split("/") if isinstance(variant, str) else []
    if len(parts) != 2 or not all(parts):
        raise VariantError(f"variant {variant!r}: expected 'clean' or '<strength>/<corruption>'")
    return parts[0], parts[1]


def strength_rank(strength: str) -> int:
    """0, 1, 2 for low, med, high; 3 for a name this vocabulary does not know."""
    names = tuple(STRENGTHS)
    return names.index(strength) if strength in STRENGTHS else len(names)


def corruption_rank(corruption: str) -> int:
    """Position in the official order; the temporal suite after the 14 (14, 15, ...), in its order; a name
    this vocabulary does not know after all of them."""
    if corruption in CORRUPTION_KINDS:
        return CORRUPTION_NAMES.index(corruption)
    if corruption in TEMPORAL_CORRUPTIONS:
        return len(CORRUPTION_NAMES) + TEMPORAL_CORRUPTIONS.index(corruption)
    return len(CORRUPTION_NAMES) + len(TEMPORAL_CORRUPTIONS)


def variant_sort_key(variant: str) -> tuple[int, str, int, str]:
    """Clean first, then strengths low -> high, corruptions in the official order (unknown names after, by
    name)."""
    strength, corruption = parse_variant(variant)
    if strength is None:
        return (0, "", 0, "")
    return (1 + strength_rank(strength), strength, corruption_rank(corruption), corruption)


#: JHMDB's 15 joints in the order of ``joint_positions.mat``'s ``pos_img`` (the PCK protocol's per-joint rows)
JHMDB_JOINTS = ("neck", "belly", "face", "right_shoulder", "left_shoulder", "right_hip", "left_hip",
                "right_elbow", "left_elbow", "right_knee", "left_knee", "right_wrist", "left_wrist",
                "right_ankle", "left_ankle")
