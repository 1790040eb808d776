"""common.vocabulary: the benchmark's strengths, corruptions, kinds and variant strings."""
from __future__ import annotations

import pytest

from common.vocabulary import (CLEAN, CORRUPTION_KINDS, CORRUPTION_NAMES, STRENGTHS, WEIGHT_FREE_CORRUPTIONS,
                               VariantError, make_variant, parse_variant, variant_sort_key)


def test_strengths_and_corruptions_in_the_official_order():
    assert dict(STRENGTHS) == {"low": 3, "med": 4, "high": 5} and list(STRENGTHS) == ["low", "med", "high"]
    assert CORRUPTION_NAMES[:3] == ("gaussian_noise", "contrast", "brightness") and len(CORRUPTION_NAMES) == 14
    assert CORRUPTION_NAMES[-4:] == ("style1", "style2", "style3", "style4")
    assert WEIGHT_FREE_CORRUPTIONS == CORRUPTION_NAMES[:10]
    assert CORRUPTION_KINDS["motion_blur"] == "temporal" and CORRUPTION_KINDS["crf_compression"] == "video"
    with pytest.raises(TypeError):
        STRENGTHS["extreme"] = 6  # read-only


def test_the_corruption_registry_implements_the_vocabulary():
    from davis_c import corruptions

    assert tuple(corruptions.CORRUPTIONS) == CORRUPTION_NAMES
    assert {n: c.kind for n, c in corruptions.CORRUPTIONS.items()} == dict(CORRUPTION_KINDS)
    assert corruptions.STRENGTHS is STRENGTHS


def test_variants_are_made_and_parsed_one_way():
    assert make_variant() == CLEAN == "clean" and parse_variant(CLEAN) == (None, None)
    assert make_variant("high", "glass_blur") == "high/glass_blur"
    assert parse_variant("high/glass_blur") == ("high", "glass_blur")
    for bad in ("high", "high/", "/glass_blur", "a/b/c", ""):
        with pytest.raises(VariantError, match="expected 'clean' or '<strength>/<corruption>'"):
            parse_variant(bad)
    for strength, corruption in (("high", None), (None, "contrast"), ("a/b", "contrast"), ("high", "")):
        with pytest.raises(VariantError):
            make_variant(strength, corruption)
    assert issubclass(VariantError, ValueError)


def test_one_sort_key():
    variants = ["high/contrast", "zzz/contrast", "low/style1", "low/invert", "clean", "med/gaussian_noise",
                "low/gaussian_noise", "high/brightness"]
    assert sorted(variants, key=variant_sort_key) == [
        "clean", "low/gaussian_noise", "low/style1", "low/invert", "med/gaussian_noise", "high/contrast",
        "high/brightness", "zzz/contrast"]
