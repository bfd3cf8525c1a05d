"""The 25-feature metadata vector BTSbot was trained on, from ``candidate`` and history.

Raw values, no scaling, -999 sentinels pass through (as in training). Derived features
follow the published BTSbot code (see DESIGN.md):

- history = ``prv_candidates`` entries with a ``magpsf`` (detections), plus the candidate;
- ``peakmag_so_far`` = min magpsf (initial 30) and ``peak_jd`` its jd (initial: candidate jd);
- ``maxmag_so_far`` = max magpsf (initial 0);
- ``first_jd`` = min(candidate.jdstarthist, min jd of the history);
- ``age = jd - first_jd``, ``days_since_peak = jd - peak_jd``,
  ``days_to_peak = peak_jd - first_jd``;
- ``nnotdet = ncovhist - ndethist``; ``new_drb`` = drb, or rb where drb is absent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from btsbot_stream.alerts.exceptions import InvalidAlert

METADATA_FEATURES: tuple[str, ...] = (
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
)
N_FEATURES = len(METADATA_FEATURES)

_DERIVED = {
    "age",
    "days_since_peak",
    "days_to_peak",
    "peakmag_so_far",
    "maxmag_so_far",
    "new_drb",
    "nnotdet",
}
RAW_FEATURES = tuple(f for f in METADATA_FEATURES if f not in _DERIVED)
# Everything decode must keep of the candidate: features, their inputs, and what the
# scored output echoes for follow-up teams (jd, fid, position, magnitude).
CANDIDATE_FIELDS = (
    *RAW_FEATURES,
    "jd",
    "jdstarthist",
    "drb",
    "rb",
    "fid",
    "candid",
    "programid",
    "isdiffpos",
)
HISTORY_FIELDS = ("jd", "magpsf")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _finite(value: Any, where: str) -> float:
    """``value`` as a float; anything but a finite int or float is ``field_invalid``."""
    if type(value) is float and value - value == 0.0:  # the common case: finite float
        return value  # (x - x is NaN for NaN and for both infinities)
    if type(value) is float or type(value) is int:  # not bool, str, bytes, records...
        number = float(value)
        if math.isfinite(number):
            return number
        raise InvalidAlert("field_invalid", f"{where} is {number}")
    raise InvalidAlert("field_invalid", f"{where} is {type(value).__name__}, not a number")


def _number(candidate: Mapping[str, Any], name: str) -> float:
    value = candidate.get(name)
    if type(value) is float and value - value == 0.0:
        return value
    if value is None:
        raise InvalidAlert("missing_field", f"candidate.{name} is absent or null")
    return _finite(value, f"candidate.{name}")


def metadata_vector(
    candidate: Mapping[str, Any], history: Sequence[Mapping[str, Any]] | None
) -> np.ndarray:
    """The 25 features of one alert, float32, in :data:`METADATA_FEATURES` order.

    Parameters
    ----------
    candidate : mapping
        The alert's ``candidate`` record (ZTF field names; jd in days).
    history : sequence of mappings or None
        ``prv_candidates``; entries without ``magpsf`` (non-detections) are ignored.

    Returns
    -------
    numpy.ndarray
        Shape (25,), dtype float32.

    Raises
    ------
    InvalidAlert
        ``missing_field`` for a feature that is absent or null, ``field_invalid`` for a
        value that is not a finite number (a detection's ``jd`` included).
    """
    jd = _number(candidate, "jd")
    magpsf = _number(candidate, "magpsf")
    peak_mag, peak_jd, max_mag = 30.0, jd, 0.0
    first_jd = jd
    if history is None:
        history = ()
    elif not isinstance(history, list | tuple):
        raise InvalidAlert("field_invalid", f"prv_candidates is {type(history).__name__}")
    for index, point in enumerate(history):
        try:
            mag = point.get("magpsf")
        except AttributeError:
            raise InvalidAlert("field_invalid", f"prv_candidates[{index}] is no record") from None
        if mag is None:
            continue  # a non-detection
        point_jd = point.get("jd")
        if point_jd is None:
            raise InvalidAlert("field_invalid", f"prv_candidates[{index}] has a magpsf but no jd")
        mag = _finite(mag, f"prv_candidates[{index}].magpsf")
        point_jd = _finite(point_jd, f"prv_candidates[{index}].jd")
        if point_jd < first_jd:
            first_jd = point_jd
        if mag < peak_mag:
            peak_mag, peak_jd = mag, point_jd
        if mag > max_mag:
            max_mag = mag
    if magpsf < peak_mag:  # the alert itself is the last detection of its history
        peak_mag, peak_jd = magpsf, jd
    max_mag = max(max_mag, magpsf)
    jdstarthist = candidate.get("jdstarthist")
    if jdstarthist is not None:
        first_jd = min(first_jd, _finite(jdstarthist, "candidate.jdstarthist"))

    drb = candidate.get("drb")
    new_drb = _finite(drb, "candidate.drb") if drb is not None else _number(candidate, "rb")
    ndethist = _number(candidate, "ndethist")
    ncovhist = _number(candidate, "ncovhist")
    derived = {
        "magpsf": magpsf,
        "age": jd - first_jd,
        "days_since_peak": jd - peak_jd,
        "days_to_peak": peak_jd - first_jd,
        "peakmag_so_far": peak_mag,
        "maxmag_so_far": max_mag,
        "new_drb": new_drb,
        "ndethist": ndethist,
        "ncovhist": ncovhist,
        "nnotdet": ncovhist - ndethist,
    }
    values = [
        derived[name] if name in derived else _number(candidate, name) for name in METADATA_FEATURES
    ]
    if not (min(values) >= -_FLOAT32_MAX and max(values) <= _FLOAT32_MAX):
        named = zip(METADATA_FEATURES, values, strict=True)
        name, value = next((n, v) for n, v in named if abs(v) > _FLOAT32_MAX)
        raise InvalidAlert("field_invalid", f"{name} = {value} overflows float32")
    return np.asarray(values, dtype=np.float32)
