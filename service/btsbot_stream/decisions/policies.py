"""Policies as configuration, and their evaluation on an object's alerts so far.

The four built-ins are BTSbot's published policies (``bts_val.py`` /
``btsbot/val.py`` in the BTSbot repository; Rehemtulla et al. 2024):

- ``bts_p1``: at least 2 alerts with ``rint(score) == 1`` and ``magpsf < 19``;
- ``bts_p2``: ``bts_p1`` and the brightest ``magpsf`` so far <= 18.5;
- ``prod_p1``: at least 1 alert with ``score > 0.85`` and ``magpsf < 19``;
- ``prod_p2``: ``prod_p1`` and the brightest ``magpsf`` so far <= 18.5.

``numpy.rint(score) == 1`` is ``score > 0.5`` for a probability: rint rounds half to
even, so 0.5 gives 0 (negative) and every value in (0.5, 1] gives 1.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from btsbot_stream.decisions.alerts import ScoredAlert

PRODUCTION_MODEL = "btsbot-v1.0.1"
_COMPARE: dict[str, Callable[[float, float], bool]] = {">": operator.gt, ">=": operator.ge}


class PolicySpec(BaseModel):
    """One save/trigger policy: when enough good alerts, and a bright enough one, were seen.

    An alert *counts* when its score for ``model`` compares to ``score_threshold`` with
    ``comparison``, its ``magpsf < mag_cut`` (when set) and, with ``window_days`` set,
    it lies at most that many days before the alert being evaluated. The policy passes
    when at least ``min_count`` alerts count and, with ``brightest_mag`` set, the
    brightest ``magpsf`` of all alerts so far is <= ``brightest_mag``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="event label, e.g. bts_p1")
    model: str = Field(description="model whose score counts, e.g. btsbot-v1.0.1")
    score_threshold: float = Field(ge=0, le=1)
    comparison: Literal[">", ">="] = ">"
    min_count: int = Field(default=1, ge=1, description="alerts that must count")
    mag_cut: float | None = Field(default=None, description="counted alerts: magpsf < this")
    brightest_mag: float | None = Field(
        default=None, description="brightest magpsf so far must be <= this"
    )
    window_days: float | None = Field(
        default=None, gt=0, description="count only alerts this recent (days)"
    )

    def counts(self, alert: ScoredAlert, now_jd: float) -> bool:
        score = alert.scores.get(self.model)
        if score is None or not _COMPARE[self.comparison](score, self.score_threshold):
            return False
        if self.mag_cut is not None and not alert.magpsf < self.mag_cut:
            return False
        return self.window_days is None or now_jd - alert.jd <= self.window_days

    def passes(self, alerts: Sequence[ScoredAlert]) -> bool:
        """Whether the policy holds on ``alerts``: an object's alerts up to and including
        the one being evaluated (the last), in jd order."""
        if not alerts:
            return False
        brightest = min(a.magpsf for a in alerts)
        if self.brightest_mag is not None and not brightest <= self.brightest_mag:
            return False
        now_jd = alerts[-1].jd
        counted = 0
        for alert in alerts:
            if self.counts(alert, now_jd):
                counted += 1
                if counted >= self.min_count:
                    return True
        return False


BUILTIN_POLICIES: tuple[PolicySpec, ...] = (
    PolicySpec(
        name="bts_p1",
        model=PRODUCTION_MODEL,
        score_threshold=0.5,
        comparison=">",
        min_count=2,
        mag_cut=19.0,
    ),
    PolicySpec(
        name="bts_p2",
        model=PRODUCTION_MODEL,
        score_threshold=0.5,
        comparison=">",
        min_count=2,
        mag_cut=19.0,
        brightest_mag=18.5,
    ),
    PolicySpec(
        name="prod_p1",
        model=PRODUCTION_MODEL,
        score_threshold=0.85,
        comparison=">",
        min_count=1,
        mag_cut=19.0,
    ),
    PolicySpec(
        name="prod_p2",
        model=PRODUCTION_MODEL,
        score_threshold=0.85,
        comparison=">",
        min_count=1,
        mag_cut=19.0,
        brightest_mag=18.5,
    ),
)
