"""cartoon's compiled mean shift gives exactly the bytes of ``cv2.pyrMeanShiftFiltering``.

Real DAVIS frames (``shared/real_davis16``), the synthetic sample, noise and flat images, odd and tiny
sizes, both edge paths of cartoon (small images: Canny), every DAVIS-C severity and several thread counts.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from davis_c.corruptions import meanshift
from davis_c.corruptions.cartoon import CARTOON, cartoon, stylize_cartoon

REAL_VIDEOS = ("blackswan", "car-shadow", "libby", "motocross-jump")
#: (sp, sr) of cartoon at severities 3, 4, 5 for 480p frames and for small (< 400 px) frames
RADII = ((15, 40), (18, 48), (22, 60), (10, 20), (12, 24), (15, 30))


def _real_frame(shared, video: str, index: int) -> np.ndarray:
    path = shared / "real_davis16" / "JPEGImages" / "480p" / video / f"{index:05d}.jpg"
    if not path.is_file():
        pytest.skip(f"real DAVIS frames not found at {path.parent}")
    return cv2.imread(str(path))  # BGR, as cartoon's mean shift sees the official frames


@pytest.fixture(params=[1, 3])
def threads(request):
    before = meanshift.get_threads()
    meanshift.set_threads(request.param)
    yield request.param
    meanshift.set_threads(before)


@pytest.mark.parametrize("sp,sr", RADII)
def test_mean_shift_identical_on_a_real_crop(shared, sp, sr, threads):
    img = _real_frame(shared, "car-shadow", 20)[100:260, 300:541]  # 160 x 241: odd width
    np.testing.assert_array_equal(meanshift.pyr_mean_shift(img, sp, sr), cv2.pyrMeanShiftFiltering(img, sp, sr))


@pytest.mark.parametrize("shape", [(2, 2), (3, 5), (5, 3), (7, 9), (33, 47), (64, 112)])
@pytest.mark.parametrize("kind", ["noise", "flat", "blocks"])
def test_mean_shift_identical_on_small_and_odd_images(shape, kind):
    rng = np.random.default_rng(sum(shape))
    if kind == "noise":
        img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    elif kind == "flat":
        img = np.full((*shape, 3), 77, np.uint8)
    else:  # large flat regions with sharp borders and mild noise: masked full-size pixels
        cells = np.where(rng.random(shape) < 0.5, 40, 200).astype(np.uint8)
        img = np.stack([cells, 255 - cells, cells // 2], -1).repeat(4, 0).repeat(4, 1)
        img = np.clip(img.astype(int) + rng.integers(-6, 7, img.shape), 0, 255).astype(np.uint8)
    for sp, sr in RADII:
        np.testing.assert_array_equal(meanshift.pyr_mean_shift(img, sp, sr),
                                      cv2.pyrMeanShiftFiltering(img, sp, sr), err_msg=f"{kind} sp={sp} sr={sr}")


def test_thread_count_does_not_change_bytes(shared):
    img = _real_frame(shared, "libby", 30)[:200]
    before = meanshift.get_threads()
    try:
        outs = []
        for n in (1, 2, 5):
            meanshift.set_threads(n)
            outs.append(meanshift.pyr_mean_shift(img, 18, 48))
    finally:
        meanshift.set_threads(before)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])
    with pytest.raises(ValueError, match="threads"):
        meanshift.set_threads(0)


def test_large_radius_falls_back_to_opencv():
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    np.testing.assert_array_equal(meanshift.pyr_mean_shift(img, 30, 50), cv2.pyrMeanShiftFiltering(img, 30, 50))
    with pytest.raises(ValueError, match="uint8"):
        meanshift.pyr_mean_shift(img.astype(np.float32), 15, 40)


@pytest.mark.parametrize("severity", [3, 4, 5])
def test_cartoon_identical_on_the_synthetic_sample(davis_sample, severity):
    """Small frames (240 x 432 < 400 px: the Canny path)."""
    frame = cv2.imread(str(sorted((davis_sample / "JPEGImages" / "480p").glob("*/00005.jpg"))[0]))[..., ::-1]
    np.testing.assert_array_equal(cartoon(frame, severity),
                                  cartoon(frame, severity, mean_shift=cv2.pyrMeanShiftFiltering))


@pytest.mark.parametrize("video", REAL_VIDEOS)
def test_cartoon_identical_on_real_frames(shared, video):
    """One full 854 x 480 real frame per video (Laplacian edge path), all three DAVIS-C severities."""
    frame = _real_frame(shared, video, 10)[..., ::-1]
    for severity in (3, 4, 5):
        np.testing.assert_array_equal(cartoon(frame, severity),
                                      cartoon(frame, severity, mean_shift=cv2.pyrMeanShiftFiltering),
                                      err_msg=f"{video} severity {severity}")


@pytest.mark.slow
@pytest.mark.parametrize("video", REAL_VIDEOS)
def test_cartoon_identical_on_every_real_frame(shared, video):
    folder = shared / "real_davis16" / "JPEGImages" / "480p" / video
    if not folder.is_dir():
        pytest.skip("real DAVIS frames not found")
    for path in sorted(folder.glob("*.jpg"))[::12]:
        frame = cv2.imread(str(path))[..., ::-1]
        for severity in (3, 4, 5):
            blur, seg, sat = CARTOON[severity - 1]
            bgr = np.ascontiguousarray(frame[..., ::-1])
            ours = stylize_cartoon(bgr, blur, seg, sat, edge_prevalence=0.8)
            ref = stylize_cartoon(bgr, blur, seg, sat, edge_prevalence=0.8, mean_shift=cv2.pyrMeanShiftFiltering)
            np.testing.assert_array_equal(ours, ref, err_msg=f"{path} severity {severity}")
