"""Odd FITS stamps for the hostile generator (see :mod:`hostile`): valid ones several of
which only astropy reads (the fast path hands them over), and broken ones, each made
from a real stamp; what astropy reads from a valid one is its expected image."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits

from hostile_payloads import STAMPS, Hostile, MiB, _with_stamps, alert_message, parts


@dataclass(frozen=True)
class FitsVariant:
    """A FITS file made from a real stamp; ``image`` is what astropy reads from it (None
    when it is broken: then ``reasons`` are the codes it must get)."""

    name: str
    fits: bytes
    image: np.ndarray | None
    reasons: frozenset[str] = frozenset()


def _cards(*cards: str) -> bytes:
    return b"".join(c.ljust(80).encode() for c in cards)


def _edit_header(raw: bytes, edit: Callable[[list[bytes]], list[bytes]]) -> bytes:
    """``raw`` with its primary header's cards edited (the header re-padded)."""
    end = next(i for i in range(0, len(raw), 80) if raw[i : i + 80].startswith(b"END     "))
    data_at = -(-(end + 80) // 2880) * 2880
    cards = [raw[i : i + 80] for i in range(0, end, 80)]
    header = b"".join(edit(cards)) + b"END".ljust(80)
    header += b" " * (-len(header) % 2880)
    return header + raw[data_at:]


def _write(*hdus: Any) -> bytes:
    buf = io.BytesIO()
    fits.HDUList(list(hdus)).writeto(buf)
    return buf.getvalue()


def _read(data: bytes) -> np.ndarray:
    """What astropy reads: the first HDU holding an image."""
    with fits.open(io.BytesIO(data), memmap=False) as hdul:
        hdu = hdul[0] if hdul[0].data is not None else hdul[1]
        return np.array(hdu.data, dtype=np.float32)


def fits_variants(raw: bytes) -> list[FitsVariant]:
    """Odd but valid FITS files (several need astropy), and broken ones, from one real
    stamp's FITS bytes."""
    image = _read(raw)
    finite = np.nan_to_num(image)
    valid: list[tuple[str, bytes]] = []

    def scaled(kind: str) -> bytes:
        hdu = fits.PrimaryHDU(finite.copy())
        with np.errstate(invalid="ignore", over="ignore"):
            hdu.scale(kind, "minmax")
        return _write(hdu)

    d_exponent = _edit_header(
        raw,
        lambda c: [*c, _cards("BSCALE  =              1.0D+00", "BZERO   =              0.0D+00")],
    )
    valid.append(("fits-d-exponent", d_exponent))
    valid.append(
        (
            "fits-bscale-2",
            _edit_header(raw, lambda c: [*c, _cards("BSCALE  =                  2.0")]),
        )
    )
    for kind in ("uint8", "int16", "int32"):
        valid.append((f"fits-bitpix-{kind}-scaled", scaled(kind)))
    valid.append(
        ("fits-bitpix-int64", _write(fits.PrimaryHDU(np.round(finite * 1000).astype(np.int64))))
    )
    valid.append(("fits-bitpix-float64", _write(fits.PrimaryHDU(image.astype(np.float64)))))
    valid.append(("fits-extension", _write(fits.PrimaryHDU(), fits.ImageHDU(image))))
    valid.append(("fits-small-50x40", _write(fits.PrimaryHDU(image[:50, :40].copy()))))
    blank = fits.PrimaryHDU(np.where(np.isnan(image), -32768, np.round(finite)).astype(np.int16))
    blank.header["BLANK"] = -32768
    blank.header["BZERO"] = 0.5
    valid.append(("fits-int16-blank", _write(blank)))
    variants = [FitsVariant(name, data, _read(data)) for name, data in valid]

    def card(keyword: str, value: str) -> Callable[[list[bytes]], list[bytes]]:
        line = f"{keyword:<8}= {value:>20}".encode().ljust(80)
        return lambda cards: [line if c.startswith(keyword.encode().ljust(8)) else c for c in cards]

    shape = frozenset({"cutout_shape"})
    corrupt = frozenset({"cutout_corrupt"})
    broken = [
        ("fits-naxis-negative", _edit_header(raw, card("NAXIS1", "-63")), shape),
        ("fits-naxis-huge", _edit_header(raw, card("NAXIS2", "1000000000")), shape),
        ("fits-naxis3", _write(fits.PrimaryHDU(image[np.newaxis])), shape),
        ("fits-64x63", _write(fits.PrimaryHDU(np.ones((64, 63), np.float32))), shape),
        ("fits-no-end", raw.replace(b"END".ljust(80), b" " * 80), corrupt),
        ("fits-short-data", raw[: len(raw) - 2880], corrupt),
        ("fits-bitpix-7", _edit_header(raw, card("BITPIX", "7")), corrupt),
        (
            "fits-bintable",
            _write(
                fits.PrimaryHDU(),
                fits.BinTableHDU.from_columns([fits.Column("a", "E", array=np.ones(3))]),
            ),
            corrupt,
        ),
        ("fits-all-nan", _write(fits.PrimaryHDU(np.full((63, 63), np.nan, np.float32))), corrupt),
        ("fits-not-fits", bytes(range(256)) * 40, corrupt),
        (
            "fits-header-2MiB",
            _edit_header(raw, lambda c: [*c, _cards("COMMENT x") * (2 * MiB // 80)]),
            frozenset({"cutout_too_large"}),
        ),
    ]
    variants += [FitsVariant(name, data, None, reasons) for name, data, reasons in broken]
    return variants


def gzip_fits(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    return packer.compress(data) + packer.flush()


def fits_cases(real: bytes, tag: str) -> Iterator[Hostile]:
    """The alert with its science stamp replaced by each FITS variant."""
    schema, record = parts(real)
    raw = zlib.decompress(record["cutoutScience"]["stampData"], 31)
    for variant in fits_variants(raw):
        message = alert_message(schema, _with_stamps(record, gzip_fits(variant.fits), STAMPS[:1]))
        broken = variant.image is None
        yield Hostile(f"{variant.name}:{tag}", message, broken, variant.reasons, not broken)
