"""cartoon: imgaug 0.4.0's ``stylize_cartoon`` re-implemented with OpenCV/numpy (imgaug does not import
under NumPy 2).

Steps (those of imgaug 0.4.0): median blur, mean-shift segmentation, edge detection (Canny for
images whose longer side is < 400 px, a squared-Laplacian percentile rule otherwise, i.e. DAVIS 480p),
binarisation, suppression of dense blobs and isolated specks, blackening of edge pixels, and an 8-bit HSV
saturation boost (its HSV -> RGB step is :func:`davis_c.corruptions.hsv8.hsv2rgb_u8`, OpenCV 4.11's bytes
whatever OpenCV is installed).  The official script passes OpenCV's BGR array to a function told it is RGB; we reproduce
that by running every step on the channel-reversed frame, which makes the gray image 0.114 R + 0.587 G +
0.299 B and flips the HSV round trip, exactly as in the released files.

The mean shift (~85 % of the time) is :func:`davis_c.corruptions.meanshift.pyr_mean_shift`, the same bytes
as ``cv2.pyrMeanShiftFiltering`` about 3x faster in CPU time and split over threads; pass
``mean_shift=cv2.pyrMeanShiftFiltering`` to :func:`stylize_cartoon` / :func:`cartoon` for OpenCV's own
(``tests/test_cartoon_fast.py`` checks that both give identical frames).
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from davis_c.corruptions._common import check_frame
from davis_c.corruptions.hsv8 import hsv2rgb_u8
from davis_c.corruptions.meanshift import pyr_mean_shift

__all__ = ["CARTOON", "EDGE_PREVALENCE", "cartoon", "stylize_cartoon"]

#: (blur_ksize, segmentation_size, saturation) (severity 1..5)
CARTOON = ((1, 1.0, 1.0), (1, 1.0, 1.0), (1, 1.0, 1.0), (3, 1.2, 1.5), (5, 1.5, 2.0))
EDGE_PREVALENCE = 0.8
_SMALL_IMAGE = 400  # longer side strictly below this: "small" parameters and the Canny edge path


def _median(img: np.ndarray, ksize: int) -> np.ndarray:
    ksize = max(int(np.round(ksize)), 1)
    if ksize % 2 == 0:
        ksize += 1
    return img if ksize == 1 else cv2.medianBlur(img, ksize)


def _edges_canny(gray: np.ndarray, prevalence: float) -> np.ndarray:
    thresh = min(int(200 * (1 / prevalence)), 254)
    return cv2.Canny(gray, thresh, thresh)


def _edges_laplacian(gray: np.ndarray, prevalence: float) -> np.ndarray:
    lap = cv2.Laplacian(gray / 255.0, cv2.CV_64F)
    energy = np.abs(lap) ** 2
    vmax = np.percentile(energy, min(int(90 * (1 / prevalence)), 99))
    if vmax <= 0:  # perfectly flat frame: no edges (imgaug would divide by zero here)
        return np.zeros_like(gray)
    energy = np.clip(energy, 0.0, vmax) / vmax
    edges = np.clip(np.round(energy * 255), 0, 255.0).astype(np.uint8)
    edges = cv2.medianBlur(edges, 3)
    edges[edges < 50] = 0
    return edges


def _suppress(edges: np.ndarray, ksize: int, threshold: int, below: bool) -> np.ndarray:
    """Zero edge pixels whose ksize x ksize neighbourhood holds >= threshold (or, if below, < threshold)
    edge pixels (reflect-101 border, centre included)."""
    count = cv2.filter2D(edges / 255.0, -1, np.ones((ksize, ksize), np.float64))
    mask = count < threshold if below else count >= threshold
    edges = edges.copy()
    edges[mask] = 0
    return edges


def stylize_cartoon(image: np.ndarray, blur_ksize: float, segmentation_size: float, saturation: float,
                    edge_prevalence: float = 1.0, suppress_edges: bool = True,
                    mean_shift: Callable[..., np.ndarray] = pyr_mean_shift) -> np.ndarray:
    """imgaug's algorithm on an image in the channel order it is *declared* to be (RGB)."""
    image = np.ascontiguousarray(image)
    small = max(image.shape[:2]) < _SMALL_IMAGE
    segmentation_size = max(segmentation_size, 1e-4)
    image = _median(image, blur_ksize)
    spatial, colour = (10, 20) if small else (15, 40)
    seg = mean_shift(image, int(spatial * segmentation_size), int(colour * segmentation_size))
    gray = cv2.cvtColor(seg, cv2.COLOR_RGB2GRAY)
    edges = _edges_canny(gray, edge_prevalence) if small else _edges_laplacian(gray, edge_prevalence)
    edges = ((edges > 100) * 255).astype(np.uint8)
    if suppress_edges:
        edges = _suppress(edges, 3, 8, below=False)
        edges = _suppress(edges, 5, 3, below=True)
    out = seg.copy()
    out[edges > 0] = 0  # blend with binary edges: edge pixels black, the rest unchanged
    if not np.isclose(saturation, 1.0, atol=1e-2):
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
        hsv[..., 1] = np.clip(hsv[..., 1].astype(np.int32) * saturation, 0, 255).astype(np.uint8)
        out = hsv2rgb_u8(hsv)  # OpenCV <= 4.11's bytes whatever OpenCV is installed (davis_c.corruptions.hsv8)
    return out


def cartoon(frame: np.ndarray, severity: int,
            mean_shift: Callable[..., np.ndarray] = pyr_mean_shift) -> np.ndarray:
    """DAVIS-C cartoon on one RGB frame, run on the BGR array as the official script does."""
    frame = check_frame(frame)
    blur, seg, sat = CARTOON[severity - 1]
    bgr = np.ascontiguousarray(frame[..., ::-1])
    out = stylize_cartoon(bgr, blur, seg, sat, edge_prevalence=EDGE_PREVALENCE, suppress_edges=True,
                          mean_shift=mean_shift)
    return np.ascontiguousarray(out[..., ::-1])
