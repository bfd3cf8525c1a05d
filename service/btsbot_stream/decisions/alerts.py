"""The few fields of a scored alert that the policies and the events use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ScoredAlert:
    """One detection of an object with its scores.

    Attributes
    ----------
    candid : int
        ZTF candidate id, unique per detection (the de-duplication key).
    jd : float
        Julian date of the observation (days).
    fid : int
        Filter: 1 = g, 2 = r, 3 = i.
    magpsf : float
        PSF-fit magnitude (mag).
    ra, dec : float
        Position (degrees, J2000).
    scores : dict[str, float]
        Probability in [0, 1] per model name.
    """

    candid: int
    jd: float
    fid: int
    magpsf: float
    ra: float
    dec: float
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def order(self) -> tuple[float, int]:
        """Position in an object's history: jd, then candid for equal jd (BTSbot's
        evaluation sorts by jd alone; candid makes ties deterministic)."""
        return (self.jd, self.candid)

    @classmethod
    def from_candidate(cls, candidate: dict[str, Any], scores: dict[str, float]) -> ScoredAlert:
        """From a ZTF ``candidate`` record (raises KeyError/TypeError on missing fields)."""
        return cls(
            candid=int(candidate["candid"]),
            jd=float(candidate["jd"]),
            fid=int(candidate["fid"]),
            magpsf=float(candidate["magpsf"]),
            ra=float(candidate["ra"]),
            dec=float(candidate["dec"]),
            scores=dict(scores),
        )

    def to_row(self) -> list[Any]:
        """Compact form kept in the state store (a list, not a dict: fewer bytes)."""
        return [self.candid, self.jd, self.fid, self.magpsf, self.ra, self.dec, self.scores]

    @classmethod
    def from_row(cls, row: list[Any]) -> ScoredAlert:
        candid, jd, fid, magpsf, ra, dec, scores = row
        return cls(
            int(candid), float(jd), int(fid), float(magpsf), float(ra), float(dec), dict(scores)
        )

    def history_entry(self) -> dict[str, Any]:
        """How the alert appears in a candidate event's score history."""
        return {
            "jd": self.jd,
            "candid": self.candid,
            "fid": self.fid,
            "magpsf": self.magpsf,
            "scores": self.scores,
        }
