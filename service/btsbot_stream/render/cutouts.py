"""Cutout stamps -> PNG images as astronomers look at them.

Scaling is astropy's: the IRAF zscale interval, then an asinh stretch for the science
and template images (faint host structure and a bright core both show) and a linear
one for the difference (positive and negative residuals stay symmetric). The image is
written with the FITS origin (pixel 0, 0) at the bottom left, as ds9 shows it. NaN and
masked pixels (ZTF templates mark them with -FLT_MAX) are drawn in one flat colour, never
scaled. One PNG pixel per FITS pixel: the page enlarges them without smoothing.
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
from astropy.visualization import (
    AsinhStretch,
    BaseStretch,
    ImageNormalize,
    LinearStretch,
    ZScaleInterval,
)
from matplotlib import colormaps
from matplotlib.image import imsave

from btsbot_stream.alerts.stamps import read_stamp

CutoutKind = Literal["science", "template", "difference"]
CUTOUT_KINDS: tuple[CutoutKind, ...] = ("science", "template", "difference")
STAMP_FIELDS: dict[CutoutKind, str] = {
    "science": "cutoutScience",
    "template": "cutoutTemplate",
    "difference": "cutoutDifference",
}
MASKED_BELOW = -1e30  # ZTF templates flag masked pixels with -FLT_MAX
BAD_COLOUR = "#3d6b8f"  # NaN / masked pixels: a muted blue, unlike any grey level
_STRETCH: dict[CutoutKind, type[BaseStretch]] = {
    "science": AsinhStretch,
    "template": AsinhStretch,
    "difference": LinearStretch,
}


def valid_pixels(image: np.ndarray) -> np.ndarray:
    """Boolean mask of pixels with a measured value (finite, not masked)."""
    return np.isfinite(image) & (image > MASKED_BELOW)


def scale(image: np.ndarray, kind: CutoutKind) -> np.ndarray:
    """``image`` scaled to [0, 1] by zscale and the kind's stretch; NaN where invalid.

    Parameters
    ----------
    image : numpy.ndarray
        2-D stamp as read from FITS (row 0 = the bottom row in FITS convention).
    kind : {"science", "template", "difference"}
    """
    good = valid_pixels(image)
    out = np.full(image.shape, np.nan, dtype=np.float64)
    if not good.any():
        return out
    values = image[good].astype(np.float64)
    vmin, vmax = ZScaleInterval().get_limits(values)
    if not vmax > vmin:  # a flat stamp: show it mid-grey rather than divide by zero
        out[good] = 0.5
        return out
    norm = ImageNormalize(vmin=vmin, vmax=vmax, stretch=_STRETCH[kind](), clip=True)
    out[good] = np.asarray(norm(values), dtype=np.float64)
    return out


def image_png(image: np.ndarray, kind: CutoutKind) -> bytes:
    """A stamp image as PNG bytes: FITS origin at the bottom left, one pixel per pixel."""
    scaled = scale(image, kind)
    cmap = colormaps["gray"].with_extremes(bad=BAD_COLOUR)
    rgba = cmap(np.ma.masked_invalid(scaled))
    buf = io.BytesIO()
    # origin="lower": the array's row 0 becomes the image's bottom row, as in ds9.
    imsave(buf, rgba, origin="lower", format="png")
    return buf.getvalue()


def cutout_png(stamp_data: bytes, kind: CutoutKind) -> bytes:
    """PNG of one alert stamp (gzipped FITS), decoded by the project's bounded stamp
    reader; raises :class:`btsbot_stream.alerts.exceptions.InvalidAlert` (JPEG
    prototype, corrupt gzip or FITS, oversized) with the reason."""
    return image_png(read_stamp(stamp_data, STAMP_FIELDS[kind]), kind)
