"""The stateful step of the stage: one scored message -> its object's state -> events.

The object's state is one value in the store (key = objectId, set by Quix from the
message key), written back with a time-to-live of ``retention_days``: Quix evicts an
object once its partition has received messages that much newer (Kafka timestamps of
the scored topic, i.e. when the alerts were scored) and writes a changelog tombstone.
Retention in alert time is the decision code's own: an alert more than
``retention_days`` (jd) after the object's last one starts the object afresh.
Kafka time, not jd, drives the eviction because a partition's clock is its newest
message: in jd, one alert of a recent night would evict every object of an older night
replayed after it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from quixstreams.state import State

from btsbot_stream import metrics
from btsbot_stream.decisions.decide import observe
from btsbot_stream.decisions.events import candidate_event
from btsbot_stream.decisions.policies import PolicySpec
from btsbot_stream.decisions.state import ObjectState
from btsbot_stream.stream.decide.codec import ScoredMessage, Unreadable

log = logging.getLogger(__name__)
STATE_KEY = "object"


class Decider:
    """Quix stateful callback: returns the candidate events (often none) of a message."""

    def __init__(self, policies: Sequence[PolicySpec], retention_days: float) -> None:
        self.policies = tuple(policies)
        self.retention_days = retention_days
        self._ttl = timedelta(days=retention_days)
        self._models_missing_warned: set[str] = set()

    def __call__(self, value: Any, key: Any, timestamp: int, headers: Any, state: State) -> list:
        if isinstance(value, Unreadable):
            metrics.DECIDE_UNREADABLE.labels(value.reason).inc()
            log.warning("skipping a scored message of %r: %s: %s", key, value.reason, value.detail)
            return []
        assert isinstance(value, ScoredMessage)
        if key != value.object_id:
            # The scorer keys by objectId; anything else would split an object's state.
            metrics.DECIDE_UNREADABLE.labels("key_mismatch").inc()
            log.warning("message key %r differs from objectId %r: skipped", key, value.object_id)
            return []
        self._warn_missing_models(value)
        stored = state.get(STATE_KEY)
        previous = ObjectState.from_json(stored) if stored is not None else None
        seen = observe(previous, value.alert, self.policies, self.retention_days)
        if seen.duplicate:
            metrics.DECIDE_ALERTS.labels("duplicate").inc()
            return []
        metrics.DECIDE_ALERTS.labels("late" if seen.late else "in_order").inc()
        if seen.expired:
            metrics.DECIDE_EXPIRED_ON_ARRIVAL.inc()
        state.set(STATE_KEY, seen.state.to_json(), ttl=self._ttl)
        now = int(time.time() * 1000)
        events = []
        for fire in seen.fires:
            metrics.DECIDE_EVENTS.labels(fire.policy.name).inc()
            log.info(
                "candidate %s %s: candid %d, jd %.5f, magpsf %.2f%s",
                value.object_id,
                fire.policy.name,
                fire.trigger.candid,
                fire.trigger.jd,
                fire.trigger.magpsf,
                " (on a late alert)" if fire.late else "",
            )
            events.append(candidate_event(value.object_id, fire, seen.state, value.models, now))
        return events

    def _warn_missing_models(self, message: ScoredMessage) -> None:
        for policy in self.policies:
            model = policy.model
            if model not in message.alert.scores and model not in self._models_missing_warned:
                self._models_missing_warned.add(model)
                log.warning(
                    "policy %s reads model %s, which did not score this alert (scores: %s): "
                    "it cannot fire on such alerts",
                    policy.name,
                    model,
                    sorted(message.alert.scores),
                )
