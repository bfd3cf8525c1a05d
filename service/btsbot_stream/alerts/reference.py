"""The plain implementation: ``fastavro.reader`` + astropy + numpy, written straight from
DESIGN.md with no shortcuts. It is the yardstick for the fast path, in two ways: tests
hold the fast path equal to it on every alert of the corpus, and ``bench --baseline``
measures how much faster the fast path is. Not used for scoring.
"""

from __future__ import annotations

import gzip
import io
from typing import Any

import fastavro
import numpy as np
from astropy.io import fits

STAMPS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")


def read_alerts(data: bytes) -> list[dict[str, Any]]:
    return list(fastavro.reader(io.BytesIO(data)))  # type: ignore[arg-type]


def stamp_image(stamp_data: bytes) -> np.ndarray:
    with fits.open(io.BytesIO(gzip.decompress(stamp_data)), memmap=False) as hdul:
        return np.array(hdul[0].data, dtype=np.float32)


def normalised_stamp(stamp_data: bytes) -> np.ndarray:
    image = np.nan_to_num(stamp_image(stamp_data))
    with np.errstate(over="ignore"):
        image = image / np.linalg.norm(image)
    padded = np.full((63, 63), 1e-9, dtype=np.float32)
    padded[: image.shape[0], : image.shape[1]] = image
    return padded


def triplet(alert: dict[str, Any]) -> np.ndarray:
    return np.stack([normalised_stamp(alert[k]["stampData"]) for k in STAMPS], axis=-1)


def metadata(alert: dict[str, Any]) -> np.ndarray:
    cand = alert["candidate"]
    detections = [p for p in (alert.get("prv_candidates") or []) if p.get("magpsf") is not None]
    detections.append(cand)
    mags = np.array([p["magpsf"] for p in detections], dtype=np.float64)
    jds = np.array([p["jd"] for p in detections], dtype=np.float64)
    peak = min(30.0, float(mags.min()))
    peak_jd = float(jds[np.argmin(mags)]) if mags.min() < 30.0 else cand["jd"]
    first_jd = min(cand["jdstarthist"], float(jds.min()))
    derived = {
        "age": cand["jd"] - first_jd,
        "days_since_peak": cand["jd"] - peak_jd,
        "days_to_peak": peak_jd - first_jd,
        "peakmag_so_far": peak,
        "maxmag_so_far": max(0.0, float(mags.max())),
        "new_drb": cand["drb"] if cand.get("drb") is not None else cand["rb"],
        "nnotdet": cand["ncovhist"] - cand["ndethist"],
    }
    names = [
        "sgscore1",
        "distpsnr1",
        "sgscore2",
        "distpsnr2",
        "fwhm",
        "magpsf",
        "sigmapsf",
        "chipsf",
        "ra",
        "dec",
        "diffmaglim",
        "ndethist",
        "nmtchps",
        "age",
        "days_since_peak",
        "days_to_peak",
        "peakmag_so_far",
        "new_drb",
        "ncovhist",
        "nnotdet",
        "chinr",
        "sharpnr",
        "scorr",
        "sky",
        "maxmag_so_far",
    ]
    return np.array([derived.get(n, cand.get(n)) for n in names], dtype=np.float32)
