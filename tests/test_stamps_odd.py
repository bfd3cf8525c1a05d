"""Odd but valid FITS stamps read as astropy reads them (several only through the astropy
fallback of ``read_stamp``, which no real stamp reaches), broken ones refused with their
reason, and the padding of small stamps compared exactly."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from btsbot_stream.alerts import stamps
from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.alerts.stamps import PAD_VALUE, read_stamp, triplet
from hostile_fits import fits_variants, gzip_fits
from hostile_payloads import STAMPS, parts

NEED_ASTROPY = {  # what the fast path hands over (integer, scaled, extension, BLANK)
    "fits-bscale-2",
    "fits-bitpix-uint8-scaled",
    "fits-bitpix-int16-scaled",
    "fits-bitpix-int32-scaled",
    "fits-bitpix-int64",
    "fits-extension",
    "fits-int16-blank",
}


@pytest.fixture(scope="module")
def science(demo_alerts: Path) -> bytes:
    """A real science stamp's FITS (54x63: from a chip edge)."""
    _, record = parts((demo_alerts / "20200202" / "1105522281015015000.avro").read_bytes())
    return zlib.decompress(record["cutoutScience"]["stampData"], 31)


def test_valid_odd_stamps_read_as_astropy_reads_them(science: bytes):
    valid = [v for v in fits_variants(science) if v.image is not None]
    assert {v.name for v in valid} >= NEED_ASTROPY
    for variant in valid:
        got = read_stamp(gzip_fits(variant.fits), variant.name)
        assert got.dtype == np.float32, variant.name
        np.testing.assert_array_equal(got, variant.image, err_msg=variant.name)


def test_the_fallback_is_what_reads_them(science: bytes, monkeypatch: pytest.MonkeyPatch):
    """The fast path declines exactly these; each then goes through astropy."""
    for variant in fits_variants(science):
        if variant.name in NEED_ASTROPY:
            assert stamps._fast_fits(variant.fits, variant.name) is None, variant.name
    calls: list[str] = []
    real = stamps._astropy_fits
    monkeypatch.setattr(
        stamps, "_astropy_fits", lambda raw, name: calls.append(name) or real(raw, name)
    )
    for variant in fits_variants(science):
        if variant.name in NEED_ASTROPY:
            read_stamp(gzip_fits(variant.fits), variant.name)
    assert sorted(calls) == sorted(NEED_ASTROPY)


def test_broken_stamps_get_their_reason(science: bytes):
    broken = [v for v in fits_variants(science) if v.image is None]
    assert len(broken) >= 10
    good = {"stampData": gzip_fits(science)}
    for variant in broken:
        alert = {
            **dict.fromkeys(STAMPS, good),
            "cutoutTemplate": {"stampData": gzip_fits(variant.fits)},
        }
        with pytest.raises(InvalidAlert) as err:
            triplet(alert)
        assert err.value.reason in variant.reasons, (variant.name, err.value)
        assert "cutoutTemplate" in err.value.detail


def test_small_stamp_padding_is_exactly_the_constant(science: bytes):
    """Bottom rows and right columns hold float32(1e-9) exactly (the corpus comparison's
    tolerance would hide zeros there)."""
    small = next(v for v in fits_variants(science) if v.name == "fits-small-50x40")
    stamp = {"stampData": gzip_fits(small.fits)}
    out = triplet(dict.fromkeys(STAMPS, stamp))
    pad = np.float32(PAD_VALUE)
    assert PAD_VALUE == 1e-9
    np.testing.assert_array_equal(out[50:, :, :], np.full((13, 63, 3), pad))
    np.testing.assert_array_equal(out[:50, 40:, :], np.full((50, 23, 3), pad))
    assert not np.any(out[:50, :40, :] == pad)  # the image itself is not padding


def test_gzip_inflating_past_the_limit_is_refused_before_it_is_held():
    bomb = zlib.compress(bytes(50 << 20), 9, wbits=31)  # 50 MiB of zeros in ~50 kB
    with pytest.raises(InvalidAlert) as err:
        read_stamp(bomb, "cutoutDifference", max_bytes=1 << 20)
    assert err.value.reason == "cutout_too_large"
    assert "limits.max_stamp_bytes" in err.value.detail
