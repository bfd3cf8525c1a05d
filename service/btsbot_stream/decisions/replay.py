"""Decisions over alerts already scored, object by object in jd order, through the same
:func:`observe` the stream stage calls (no look-ahead: each alert sees only the alerts
before it)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from btsbot_stream.decisions.alerts import ScoredAlert
from btsbot_stream.decisions.decide import Fire, observe
from btsbot_stream.decisions.policies import PolicySpec
from btsbot_stream.decisions.state import ObjectState


@dataclass(frozen=True, slots=True)
class ObjectFire:
    """A fire on one object. ``state`` is the object's state at the fire; the iterator
    goes on adding alerts to it, so build the event before taking the next item."""

    object_id: str
    fire: Fire
    state: ObjectState


def replay_objects(
    alerts: Iterable[tuple[str, ScoredAlert]],
    policies: Sequence[PolicySpec],
    retention_days: float,
) -> Iterator[ObjectFire]:
    """Every fire over ``(objectId, alert)`` pairs given in any order; objects in
    objectId order, each object's alerts in jd order."""
    by_object: dict[str, list[ScoredAlert]] = {}
    for object_id, alert in alerts:
        by_object.setdefault(object_id, []).append(alert)
    for object_id in sorted(by_object):
        state: ObjectState | None = None
        for alert in sorted(by_object[object_id], key=lambda a: a.order):
            seen = observe(state, alert, policies, retention_days)
            state = seen.state
            for fire in seen.fires:
                yield ObjectFire(object_id, fire, state)
