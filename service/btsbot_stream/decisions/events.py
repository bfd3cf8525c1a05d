"""Candidate events: what a follow-up team receives when a policy fires on an object.

One JSON object per (object, policy), key = objectId. The layout is documented in
docs/follow-up-guide.md ("Candidate events") and held to it by the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from btsbot_stream import __version__
from btsbot_stream.decisions.decide import Fire
from btsbot_stream.decisions.state import ObjectState

EVENT_VERSION = 1


def candidate_event(
    object_id: str,
    fire: Fire,
    state: ObjectState,
    models: Mapping[str, Mapping[str, str]],
    decided_at_ms: int,
) -> dict[str, Any]:
    """The event for ``fire`` on ``object_id``.

    Parameters
    ----------
    models : mapping
        Model name -> {"version", "sha256"} of the models that scored the alerts.
    decided_at_ms : int
        Wall-clock time of the decision, milliseconds since the Unix epoch.
    """
    trigger = fire.trigger
    return {
        "event_version": EVENT_VERSION,
        "objectId": object_id,
        "policy": fire.policy.name,
        "candid": trigger.candid,
        "jd": trigger.jd,
        "magpsf": trigger.magpsf,
        "fid": trigger.fid,
        "ra": trigger.ra,
        "dec": trigger.dec,
        "brightest_magpsf": fire.brightest_mag,
        "late": fire.late,
        "arrived_candid": fire.arrived.candid,
        "n_alerts": len(state.alerts),
        "history": [a.history_entry() for a in state.alerts],
        "policy_definition": fire.policy.model_dump(),
        "models": [{"model": name, **dict(info)} for name, info in sorted(models.items())],
        "service_version": __version__,
        "decided_at": decided_at_ms,
    }
