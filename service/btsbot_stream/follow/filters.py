"""What a follow-up team wants to see: score, magnitude, band, sky region, policy.

:meth:`Filters.on_headers` decides on the Kafka headers alone (the score), so most
alerts are dropped without decoding; :meth:`Filters.accepts` decides on the decoded item.
An item lacking the value a filter needs does not pass that filter (an alert has no
policy; an event without a magnitude fails a magnitude cut).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from btsbot_stream.follow.items import FollowItem

ANY_MODEL = "*"  # --min-score 0.5: every model the alert carries must reach 0.5
BAND_IDS = {"g": 1, "r": 2, "i": 3}


@dataclass(frozen=True)
class Cone:
    """A circle on the sky: centre in degrees (ICRS), radius in arcseconds."""

    ra: float
    dec: float
    radius_arcsec: float

    def contains(self, ra: float, dec: float) -> bool:
        from astropy.coordinates import angular_separation  # heavy; only for cone searches

        separation = angular_separation(
            math.radians(self.ra), math.radians(self.dec), math.radians(ra), math.radians(dec)
        )
        return bool(math.degrees(float(separation)) * 3600.0 <= self.radius_arcsec)


@dataclass(frozen=True)
class Filters:
    min_scores: Mapping[str, float] = field(default_factory=dict)  # model (or "*") -> min
    mag_min: float | None = None  # brightest magnitude accepted (smaller number)
    mag_max: float | None = None  # faintest magnitude accepted
    bands: frozenset[int] = frozenset()  # fid: 1 g, 2 r, 3 i; empty = all
    cone: Cone | None = None
    policies: frozenset[str] = frozenset()

    @property
    def needs_decoding(self) -> bool:
        """Whether anything beyond the score headers decides."""
        return bool(
            self.mag_min is not None
            or self.mag_max is not None
            or self.bands
            or self.cone
            or self.policies
        )

    def _scores_pass(self, scores: Mapping[str, float]) -> bool:
        for model, minimum in self.min_scores.items():
            if model == ANY_MODEL:
                if not scores or any(s < minimum for s in scores.values()):
                    return False
            elif scores.get(model, -math.inf) < minimum:
                return False
        return True

    def on_headers(self, item: FollowItem) -> bool | None:
        """False: drop without decoding; None: decode and decide with :meth:`accepts`."""
        if item.kind == "alert" and self.policies:
            return False  # alerts have no policy
        if item.kind == "alert" and item.scores and not self._scores_pass(item.scores):
            return False
        return None

    def accepts(self, item: FollowItem) -> bool:
        if not self._scores_pass(item.scores):
            return False
        if self.policies and item.policy not in self.policies:
            return False
        if self.mag_min is not None or self.mag_max is not None:
            if item.magpsf is None:
                return False
            if self.mag_min is not None and item.magpsf < self.mag_min:
                return False
            if self.mag_max is not None and item.magpsf > self.mag_max:
                return False
        if self.bands and item.fid not in self.bands:
            return False
        if self.cone is not None:
            if item.ra is None or item.dec is None:
                return False
            return self.cone.contains(item.ra, item.dec)
        return True
