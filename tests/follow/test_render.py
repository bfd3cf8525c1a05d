"""Cutout PNGs and light curves from real alerts (no Kafka, no web)."""

from __future__ import annotations

import gzip
import io

import fastavro
import numpy as np
import pytest
from astropy.io import fits
from matplotlib.colors import to_rgba
from PIL import Image

from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.render.cutouts import BAD_COLOUR, CUTOUT_KINDS, STAMP_FIELDS, cutout_png
from btsbot_stream.render.lightcurve import ScoredDetection, light_curve
from btsbot_stream.render.plots import light_curve_png
from corpus import DEMO_ALERTS, AlertSet

BAD_RGB = tuple(round(255 * c) for c in to_rgba(BAD_COLOUR)[:3])


def _record(path: object) -> dict:
    with open(str(path), "rb") as fh:
        (record,) = fastavro.reader(fh)
    return record  # type: ignore[return-value]


def _fits_stamp(data: np.ndarray) -> bytes:
    buf = io.BytesIO()
    fits.PrimaryHDU(data.astype(">f4")).writeto(buf)
    return gzip.compress(buf.getvalue())


def _png(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _fits_data(stamp: bytes) -> np.ndarray:
    with fits.open(io.BytesIO(gzip.decompress(stamp))) as hdul:
        return np.array(hdul[0].data, dtype=np.float64)


def test_bright_corner_lands_bottom_left_as_in_ds9() -> None:
    """FITS pixel (1, 1) (array [0, 0]) is drawn at the bottom left of the image."""
    rng = np.random.default_rng(1)
    data = rng.normal(100.0, 5.0, (63, 63))
    data[0:4, 0:4] = 5000.0  # FITS rows 1-4, columns 1-4: ds9's bottom-left corner
    data[59:63, 59:63] = -5000.0  # ds9's top-right corner
    grey = _png(cutout_png(_fits_stamp(data), "science"))[:, :, 0]
    assert grey.shape == (63, 63)
    assert (grey[-4:, :4] == 255).all()  # PNG row 62 is the bottom row on screen
    assert (grey[:4, -4:] == 0).all()
    assert grey[:4, :4].max() < 255 and grey[-4:, -4:].min() > 0


def test_non_square_stamp_keeps_its_shape_and_orientation() -> None:
    data = np.zeros((44, 63))  # 44 rows (FITS NAXIS2), 63 columns
    data[:, :] = np.arange(44)[:, None]  # brighter towards FITS row 44 (the top in ds9)
    grey = _png(cutout_png(_fits_stamp(data), "template"))[:, :, 0]
    assert grey.shape == (44, 63)
    column = grey[:, 30].astype(int)
    assert (np.diff(column) <= 0).all() and column[0] > column[-1]  # top bright, bottom dark


def _check_real_stamp(stamp: bytes, kind: str) -> None:
    data = _fits_data(stamp)
    rgb = _png(cutout_png(stamp, kind))  # type: ignore[arg-type]
    assert rgb.shape[:2] == data.shape
    valid = np.isfinite(data) & (data > -1e30)
    flipped_valid = np.flipud(valid)
    grey = rgb[:, :, 0].astype(int)
    assert grey[flipped_valid].std() > 5, "blank image"
    # Drawn in FITS pixel order: sorted by the pixel values (flipped for the screen),
    # grey levels never go down (zscale + stretch are monotone).
    values = np.flipud(data)[flipped_valid]
    order = np.argsort(values, kind="stable")
    assert (np.diff(grey[flipped_valid][order]) >= 0).all()
    # Missing and masked pixels are drawn in the one "no data" colour.
    assert (rgb[~flipped_valid] == BAD_RGB).all()


def test_real_stamps_render_non_blank_in_fits_order(real_alerts: AlertSet) -> None:
    drawn = 0
    for path in real_alerts.files:
        record = _record(path)
        if record["cutoutScience"]["stampData"][:2] == b"\xff\xd8":
            continue  # JPEG prototypes: refused (next test)
        for kind in CUTOUT_KINDS:
            _check_real_stamp(record[STAMP_FIELDS[kind]]["stampData"], kind)
            drawn += 1
    assert drawn == 3 * real_alerts.fits_alerts


def test_nan_and_masked_pixels_are_marked_not_scaled() -> None:
    nan_stamp = _record(DEMO_ALERTS / "20181129" / "697252382115010005.avro")  # NaN pixels
    masked = _record(DEMO_ALERTS / "20181129" / "697251921615015003.avro")  # -FLT_MAX
    for record, field in ((nan_stamp, "cutoutScience"), (masked, "cutoutTemplate")):
        stamp = record[field]["stampData"]
        data = _fits_data(stamp)
        invalid = ~(np.isfinite(data) & (data > -1e30))
        assert invalid.any()
        rgb = _png(cutout_png(stamp, "science"))
        assert (rgb[np.flipud(invalid)] == BAD_RGB).all()


def test_jpeg_stamp_is_refused_with_its_reason() -> None:
    record = _record(DEMO_ALERTS / "mixed-versions" / "87704463155000.avro")
    with pytest.raises(InvalidAlert) as caught:
        cutout_png(record["cutoutScience"]["stampData"], "science")
    assert caught.value.reason == "cutout_jpeg"


def test_light_curve_equals_the_alert_history(real_alerts: AlertSet) -> None:
    for path in real_alerts.files:
        record = _record(path)
        history = record.get("prv_candidates") or []
        candidate = record["candidate"]  # a copy of it in the history is the same detection
        want_detections = {
            (p["jd"], p["fid"], p["magpsf"], p.get("sigmapsf"))
            for p in history
            if p.get("magpsf") is not None and p.get("candid") != candidate["candid"]
        } | {(candidate["jd"], candidate["fid"], candidate["magpsf"], candidate.get("sigmapsf"))}
        want_limits = {
            (p["jd"], p["fid"], p["diffmaglim"])
            for p in history
            if p.get("magpsf") is None and p.get("diffmaglim") is not None
        }
        curve = light_curve(record)
        got_detections = {(p.jd, p.fid, p.magpsf, p.sigmapsf) for p in curve.detections}
        got_limits = {(p.jd, p.fid, p.diffmaglim) for p in curve.upper_limits}
        assert got_detections == {tuple(map(_f, d)) for d in want_detections}, path
        assert got_limits == {tuple(map(_f, d)) for d in want_limits}, path
        assert [p.jd for p in curve.points] == sorted(p.jd for p in curve.points)


def _f(value: float | int | None) -> float | int | None:
    return value if value is None or isinstance(value, int) else float(value)


def test_scored_alerts_join_the_curve_once_with_their_scores() -> None:
    record = _record(DEMO_ALERTS / "20200202" / "1127536316315015004.avro")  # ZTF20aajcdad
    other = _record(DEMO_ALERTS / "20200202" / "1127495406315015005.avro")  # same object
    scored = [
        ScoredDetection(
            r["candid"],
            r["candidate"]["jd"],
            r["candidate"]["fid"],
            r["candidate"]["magpsf"],
            r["candidate"]["sigmapsf"],
            {"m": p},
        )
        for r, p in ((record, 0.9), (other, 0.8))
    ]
    alone = light_curve(record)
    curve = light_curve(record, scored)
    candids = [p.candid for p in curve.detections if p.candid is not None]
    assert len(candids) == len(set(candids))  # the alert itself is not counted twice
    assert other["candid"] in candids and record["candid"] in candids
    assert len(curve.detections) == len(alone.detections) + (
        other["candid"] not in {p.candid for p in alone.detections}
    )
    assert [(s.candid, s.score) for s in curve.scores] == sorted(
        [(record["candid"], 0.9), (other["candid"], 0.8)],
        key=lambda s: {
            record["candid"]: record["candidate"]["jd"],
            other["candid"]: other["candidate"]["jd"],
        }[s[0]],
    )


def test_light_curve_plot_is_a_non_blank_png() -> None:
    record = _record(DEMO_ALERTS / "20200202" / "1127536316315015004.avro")
    png = light_curve_png(light_curve(record), "ZTF20aajcdad")
    image = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    assert image.shape[0] > 200 and image.shape[1] > 500
    assert image.std() > 10
