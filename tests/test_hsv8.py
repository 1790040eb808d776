"""davis_c.corruptions.hsv8: OpenCV <= 4.11's uint8 HSV -> RGB, bit for bit, on every input value
(golden: tests/golden/hsv8, made with opencv-python-headless 4.11.0.86)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from davis_c.corruptions.hsv8 import hsv2rgb_u8

GOLD = Path(__file__).parent / "golden" / "hsv8"


def _all_values(width: int) -> np.ndarray:
    allv = np.stack(np.meshgrid(*[np.arange(256, dtype=np.uint8)] * 3, indexing="ij"), -1).reshape(-1, 3)
    n = -(-len(allv) // width) * width
    return np.concatenate([allv, allv[: n - len(allv)]]).reshape(-1, width, 3)


@pytest.mark.parametrize("width", [17, 160, 216, 854, 1280, 1920])
def test_every_hsv_value_matches_opencv_4_11(width):
    want = json.loads((GOLD / "digests.json").read_text())["sha256_all_values"][str(width)]
    assert hashlib.sha256(hsv2rgb_u8(_all_values(width)).tobytes()).hexdigest() == want


@pytest.mark.parametrize("width", [160, 1280, 1920])
def test_sample_arrays(width):
    gold = np.load(GOLD / "sample.npz")
    np.testing.assert_array_equal(hsv2rgb_u8(gold[f"hsv_{width}"]), gold[f"rgb_{width}"])
    # one row at a time (a (W, 3) array) gives the same bytes as the image
    np.testing.assert_array_equal(hsv2rgb_u8(gold[f"hsv_{width}"][0]), gold[f"rgb_{width}"][0])


def test_rejects_other_inputs():
    with pytest.raises(ValueError, match="uint8"):
        hsv2rgb_u8(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        hsv2rgb_u8(np.zeros((2, 2, 4), np.uint8))


def test_cartoon_uses_it_at_160_px(monkeypatch):
    """cartoon at med/high on a 160-px-wide frame: the bytes do not depend on cv2's HSV -> RGB."""
    import cv2

    from davis_c.corruptions import cartoon as K

    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (24, 160, 3), dtype=np.uint8)
    frame = cv2.GaussianBlur(frame, (5, 5), 2)
    ref = K.cartoon(frame, 5)
    real = cv2.cvtColor

    def no_hsv2rgb(img, code, *a, **kw):
        assert code != cv2.COLOR_HSV2RGB, "cartoon must not call OpenCV's HSV -> RGB"
        return real(img, code, *a, **kw)

    monkeypatch.setattr(K.cv2, "cvtColor", no_hsv2rgb)
    np.testing.assert_array_equal(K.cartoon(frame, 5), ref)
