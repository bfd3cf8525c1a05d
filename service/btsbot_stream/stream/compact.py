"""The optional compact topic for follow-up teams: small JSON, one per scored alert."""

from __future__ import annotations

import json
from typing import Any

from btsbot_stream.scoring import Outcome

CANDIDATE_FIELDS = ("jd", "ra", "dec", "magpsf", "fid")


def compact_record(outcome: Outcome) -> bytes:
    assert outcome.alert is not None
    candidate = outcome.alert.record.get("candidate") or {}
    value: dict[str, Any] = {"objectId": outcome.object_id, "candid": outcome.candid}
    value.update({k: candidate.get(k) for k in CANDIDATE_FIELDS})
    value["scores"] = outcome.scores
    return json.dumps(value).encode()
