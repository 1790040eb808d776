"""The simple ImageNet-C corruptions used by DAVIS-C: gaussian_noise, contrast, defocus_blur, pixelate.

Each function takes one uint8 RGB frame and returns the uint8 array the official script hands to its JPEG
encoder (float results rounded half-to-even, as ``cv2.imwrite`` does).  Formulas follow Hendrycks'
``make_imagenet_c.py`` as used (unmodified) by ``DAVIS-C/davisc_create.py``.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np
from PIL import Image

from davis_c.corruptions._common import check_frame, to_uint8

__all__ = ["GAUSSIAN_NOISE", "CONTRAST", "DEFOCUS_BLUR", "PIXELATE",
           "gaussian_noise", "contrast", "defocus_blur", "defocus_kernel", "pixelate"]

#: noise std on [0, 1] images (severity 1..5)
GAUSSIAN_NOISE = (0.08, 0.12, 0.18, 0.26, 0.38)
#: contrast factor (severity 1..5)
CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)
#: (disk radius, alias blur sigma) (severity 1..5)
DEFOCUS_BLUR = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))
#: downscale factor (severity 1..5)
PIXELATE = (0.6, 0.5, 0.4, 0.3, 0.25)


def gaussian_noise(frame: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Additive i.i.d. normal noise, clipped.  Draws H*W*3 normals from ``rng`` in the official order.

    The official array is BGR, so noise entry ``[..., 0]`` lands on blue: we index the draws the same
    way, which makes the output equal to the official one for the same legacy RNG state.
    """
    frame = check_frame(frame)
    x = frame[..., ::-1] / 255.0
    noisy = np.clip(x + rng.normal(size=x.shape, scale=GAUSSIAN_NOISE[severity - 1]), 0, 1) * 255
    return to_uint8(noisy)[..., ::-1]


def contrast(frame: np.ndarray, severity: int) -> np.ndarray:
    """Pull every channel towards its frame mean (per channel, so channel order does not matter)."""
    c = CONTRAST[severity - 1]
    x = check_frame(frame) / 255.0
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return to_uint8(np.clip((x - means) * c + means, 0, 1) * 255)


@functools.lru_cache(maxsize=None)
def defocus_kernel(severity: int) -> np.ndarray:
    """The official anti-aliased disk kernel (float32).  Not renormalised after the Gaussian: at severity 4
    and 5 it sums to 1.013 / 1.011 (an official quirk that slightly brightens the image)."""
    radius, alias_blur = DEFOCUS_BLUR[severity - 1]
    half, ksize = (8, (3, 3)) if radius <= 8 else (radius, (5, 5))
    grid = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(grid, grid)
    disk = np.array(xx ** 2 + yy ** 2 <= radius ** 2, dtype=np.float32)
    disk /= np.sum(disk)
    kernel = cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)
    kernel.setflags(write=False)
    return kernel


def defocus_blur(frame: np.ndarray, severity: int) -> np.ndarray:
    """Correlate each channel (float64, reflect-101 border) with the disk kernel."""
    x = check_frame(frame) / 255.0
    kernel = defocus_kernel(severity)
    out = np.empty_like(x)
    for ch in range(3):
        out[..., ch] = cv2.filter2D(np.ascontiguousarray(x[..., ch]), -1, kernel)
    return to_uint8(np.clip(out, 0, 1) * 255)


def pixelate(frame: np.ndarray, severity: int) -> np.ndarray:
    """Pillow BOX downscale then BOX upscale (not NEAREST as in the imagecorruptions package)."""
    frame = check_frame(frame)
    c = PIXELATE[severity - 1]
    hgt, wid = frame.shape[:2]
    img = Image.fromarray(frame)
    small = img.resize((int(wid * c), int(hgt * c)), Image.BOX)
    return np.asarray(small.resize((wid, hgt), Image.BOX))
