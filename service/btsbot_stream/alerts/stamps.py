"""Cutout stamps: gzip-compressed FITS images -> the normalised 63x63x3 triplet.

The fast path inflates with ISA-L (``isal``, about twice zlib's speed; never past
``limits.max_stamp_bytes``), reads the mandatory cards of the primary header and views
the data with ``numpy.frombuffer`` (several times faster than astropy). It takes what
every real ZTF stamp is: a 2-D BITPIX -32 (or -64) primary image without scaling.
Anything else (integer or scaled data, extensions, a header out of the standard order)
goes to astropy, so unusual stamps are slower, never wrong; what astropy cannot read is
``cutout_corrupt``. Tests hold both against a plain astropy implementation on every
stamp of the corpus and on generated odd ones.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from btsbot_stream.alerts import inflate
from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.config import LimitSettings

STAMP_SIZE = 63
PAD_VALUE = 1e-9  # BTSbot pads bottom/right after normalising, with this constant
STAMP_ORDER = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
MAX_STAMP_BYTES = LimitSettings().max_stamp_bytes  # the default of limits.max_stamp_bytes
_BLOCK = 2880
_CARD = 80
_FLOAT_DTYPES = {-32: ">f4", -64: ">f8"}


_END_CARD = b"END" + b" " * 77
# The FITS standard (4.4.1) fixes the first cards of a primary header, in this order.
_MANDATORY = (b"SIMPLE", b"BITPIX", b"NAXIS", b"NAXIS1", b"NAXIS2")


def _card_value(card: bytes) -> str:
    return card[10:].split(b"/", 1)[0].strip().decode("ascii", "replace")


def _keyword(header: bytes, keyword: bytes) -> str | None:
    """The value of ``keyword`` in a header, looking only at card boundaries."""
    needle = keyword.ljust(8) + b"="
    pos = header.find(needle)
    while pos >= 0 and pos % _CARD:
        pos = header.find(needle, pos + 1)
    return None if pos < 0 else _card_value(header[pos : pos + _CARD])


def _fits_number(text: str | None, default: float) -> float | None:
    """A header number (FITS allows a D exponent: 1.0D+00); None if it is not one."""
    if text is None:
        return default
    try:
        return float(text.replace("D", "E").replace("d", "e"))
    except ValueError:
        return None


def _check_shape(shape: tuple[int, ...], name: str) -> None:
    if len(shape) != 2 or not all(0 < n <= STAMP_SIZE for n in shape):
        raise InvalidAlert("cutout_shape", f"{name} has shape {shape}; expected 2-D, at most 63x63")


def _fast_fits(raw: bytes, name: str) -> np.ndarray | None:
    """The primary image of a plain unscaled 2-D float FITS, or None for the general
    reader. Checks the shape before touching the data."""
    end = raw.find(_END_CARD)
    while end >= 0 and end % _CARD:  # only a whole card counts
        end = raw.find(_END_CARD, end + 1)
    if end < 0:
        raise InvalidAlert("cutout_corrupt", f"{name}: FITS header has no END card")
    end_card = end // _CARD
    header = raw[: end + _CARD]
    first = [header[i * _CARD : (i + 1) * _CARD] for i in range(min(5, end_card))]
    if [c[:8].rstrip() for c in first] != list(_MANDATORY):
        return None  # not a plain 2-D primary image: let astropy sort it out
    simple, bitpix_text, naxis, width, height = (_card_value(c) for c in first)
    try:
        bitpix, shape = int(bitpix_text), (int(height), int(width))
    except ValueError:
        return None
    if simple != "T" or naxis != "2" or bitpix not in _FLOAT_DTYPES:
        return None
    scale = _fits_number(_keyword(header, b"BSCALE"), 1.0)
    zero = _fits_number(_keyword(header, b"BZERO"), 0.0)
    if scale != 1.0 or zero != 0.0:  # scaled data (or an unreadable scale): astropy
        return None
    _check_shape(shape, name)
    dtype = np.dtype(_FLOAT_DTYPES[bitpix])
    start = -(-len(header) // _BLOCK) * _BLOCK  # data begins at the next 2880-byte block
    count = shape[0] * shape[1]
    if start + count * dtype.itemsize > len(raw):
        raise InvalidAlert(
            "cutout_corrupt",
            f"{name}: FITS data needs {count * dtype.itemsize} bytes, file is short",
        )
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=start).reshape(shape)
    return data.astype(np.float32)  # native-endian copy


def _astropy_fits(raw: bytes, name: str) -> np.ndarray:
    """The first image HDU, read by astropy (checked against the shape limit first)."""
    from astropy.io import fits  # slow general path only

    try:
        # Odd headers make astropy warn (raw lines on stderr): the outcome says all
        # there is to say.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(io.BytesIO(raw), memmap=False) as hdul:
                hdu = hdul[0]
                if not hdu.header.get("NAXIS") and len(hdul) > 1:  # the image follows
                    hdu = hdul[1]
                if not isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU) or not hdu.shape:
                    raise InvalidAlert("cutout_corrupt", f"{name}: FITS holds no image")
                _check_shape(tuple(hdu.shape), name)
                return np.array(hdu.data, dtype=np.float32)
    except InvalidAlert:
        raise
    except Exception as exc:  # astropy raises many types for a damaged file
        raise InvalidAlert(
            "cutout_corrupt", f"{name}: FITS does not parse: {type(exc).__name__}: {exc}"
        ) from exc


def read_stamp(
    stamp_data: bytes, name: str = "stamp", max_bytes: int = MAX_STAMP_BYTES
) -> np.ndarray:
    """Decode one ``stampData`` to a new 2-D float32 image (NaN kept).

    Raises :class:`InvalidAlert` with ``cutout_jpeg`` for JPEG prototypes,
    ``cutout_too_large`` when it inflates past ``max_bytes``, ``cutout_corrupt`` for
    damaged gzip or FITS and ``cutout_shape`` for an image that is not 2-D and at most
    63x63.
    """
    if stamp_data[:2] == b"\xff\xd8":
        raise InvalidAlert("cutout_jpeg", f"{name} is a JPEG (2016-18 prototype packet), not FITS")
    try:
        raw = inflate.inflate(stamp_data, inflate.GZIP, max_bytes)
    except inflate.Damaged as exc:
        raise InvalidAlert("cutout_corrupt", f"{name} does not gunzip: {exc}") from exc
    if raw is None:
        raise InvalidAlert(
            "cutout_too_large",
            f"{name} inflates past limits.max_stamp_bytes = {max_bytes} bytes",
        )
    image = _fast_fits(raw, name)
    if image is None:
        image = _astropy_fits(raw, name)  # a fresh float32 array, as _fast_fits returns
    return image


def _normalise_into(image: np.ndarray, out: np.ndarray, name: str) -> None:
    """Normalise ``image`` (a float32 array we own: changed in place) into ``out``."""
    if not np.isfinite(image).all():  # one pass; nan_to_num only where needed
        np.nan_to_num(image, copy=False)
    with np.errstate(over="ignore"):
        norm = np.linalg.norm(image)
    if not norm > 0:
        raise InvalidAlert("cutout_corrupt", f"{name} is blank (norm {norm}): cannot normalise")
    # Templates with masked pixels at -FLT_MAX overflow the float32 norm to inf, and the
    # stamp becomes all zeros. That is what BTSbot computed in training: keep it.
    image /= norm
    height, width = image.shape
    out[:height, :width] = image
    if (height, width) != (STAMP_SIZE, STAMP_SIZE):
        out[height:, :] = PAD_VALUE
        out[:height, width:] = PAD_VALUE


def triplet(
    alert: Mapping[str, Any], out: np.ndarray | None = None, max_stamp_bytes: int = MAX_STAMP_BYTES
) -> np.ndarray:
    """The (63, 63, 3) float32 NHWC triplet: science, template, difference."""
    if out is None:
        out = np.empty((STAMP_SIZE, STAMP_SIZE, 3), dtype=np.float32)
    for channel, name in enumerate(STAMP_ORDER):
        cutout = alert.get(name)
        if cutout is None:
            raise InvalidAlert("cutout_missing", f"{name} is null (stripped stamps)")
        if not isinstance(cutout, dict):
            raise InvalidAlert("field_invalid", f"{name} is {type(cutout).__name__}, not a record")
        data = cutout.get("stampData")
        if data is None:
            raise InvalidAlert("cutout_missing", f"{name}.stampData is null (stripped stamps)")
        if not isinstance(data, bytes):
            raise InvalidAlert("field_invalid", f"{name}.stampData is {type(data).__name__}")
        _normalise_into(read_stamp(data, name, max_stamp_bytes), out[:, :, channel], name)
    return out
