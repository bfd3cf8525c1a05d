"""The decision step: one scored alert into an object's state, the policies that fire.

BTSbot's evaluation takes an object's alerts in jd order and, after each, evaluates the
policy on all alerts so far; the first pass saves the object at that alert. A stream
adds two things a table does not have:

- **duplicates** (the scored topic is at-least-once): an alert whose candid is already
  in the state changes nothing;
- **late alerts**: one older than alerts already seen is inserted in jd order, and the
  policy is evaluated on every prefix that now contains it, oldest first. The first
  prefix that passes gives the trigger; the event says ``late``.

Prefixes ending before the inserted alert are unchanged and were evaluated when their
last alert arrived, so they are not evaluated again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from btsbot_stream.decisions.alerts import ScoredAlert
from btsbot_stream.decisions.policies import PolicySpec
from btsbot_stream.decisions.state import FiredPolicy, ObjectState


@dataclass(frozen=True, slots=True)
class Fire:
    """A policy passing for the first time on an object.

    Attributes
    ----------
    policy : PolicySpec
    trigger : ScoredAlert
        The alert at which the policy first passes, in jd order (where BTSbot saves).
    arrived : ScoredAlert
        The alert whose arrival made it pass (``trigger`` unless it came late).
    late : bool
        ``arrived`` is older than an alert already seen for this object.
    brightest_mag : float
        The brightest magpsf of the alerts up to ``trigger`` (mag).
    """

    policy: PolicySpec
    trigger: ScoredAlert
    arrived: ScoredAlert
    late: bool
    brightest_mag: float


@dataclass(slots=True)
class Observation:
    """What one alert did to its object."""

    state: ObjectState
    fires: list[Fire] = field(default_factory=list)
    duplicate: bool = False
    late: bool = False  # older than an alert already seen for the object
    expired: bool = False  # the previous history was older than the retention: dropped


def observe(
    state: ObjectState | None,
    alert: ScoredAlert,
    policies: Sequence[PolicySpec],
    retention_days: float,
) -> Observation:
    """Add ``alert`` to ``state`` (changed in place; None: a new object) and fire every
    policy that now passes for the first time."""
    expired = state is not None and alert.jd - state.last_jd > retention_days
    if state is None or expired:
        state = ObjectState()
    if state.has(alert.candid):
        return Observation(state, duplicate=True)
    late = bool(state.alerts) and alert.order < state.alerts[-1].order
    start = state.insert(alert)
    fires = []
    for policy in policies:
        if policy.name in state.fired:
            continue
        fire = _first_pass(policy, state.alerts, start, alert, late)
        if fire is not None:
            state.fired[policy.name] = FiredPolicy(
                fire.trigger.candid, fire.trigger.jd, fire.trigger.magpsf, late
            )
            fires.append(fire)
    return Observation(state, fires, late=late, expired=expired)


def _first_pass(
    policy: PolicySpec,
    alerts: list[ScoredAlert],
    start: int,
    arrived: ScoredAlert,
    late: bool,
) -> Fire | None:
    for end in range(start, len(alerts)):
        prefix = alerts[: end + 1]
        if policy.passes(prefix):
            brightest = min(a.magpsf for a in prefix)
            return Fire(policy, alerts[end], arrived, late, brightest)
    return None
