"""Decoded alert -> model inputs (triplet + metadata), or a Reject saying why not."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from btsbot_stream.alerts.avro import DecodedAlert
from btsbot_stream.alerts.exceptions import InvalidAlert, Reject
from btsbot_stream.alerts.features import metadata_vector
from btsbot_stream.alerts.stamps import triplet


@dataclass(slots=True)
class Prepared:
    """What the models need for one alert."""

    triplet: np.ndarray  # (63, 63, 3) float32
    metadata: np.ndarray  # (25,) float32


def identity(alert: DecodedAlert) -> tuple[str | None, int | None]:
    """(objectId, candid) as far as the record has them."""
    record = alert.record
    candidate = record.get("candidate") or {}
    candid = record.get("candid", candidate.get("candid"))
    return record.get("objectId"), (int(candid) if candid is not None else None)


def prepare(alert: DecodedAlert) -> Prepared | Reject:
    record = alert.record
    try:
        image = triplet(record)  # first: stamp problems are the most specific reason
        candidate = record.get("candidate")
        if candidate is None:
            raise InvalidAlert("missing_field", "alert has no candidate record")
        if record.get("objectId") is None:
            raise InvalidAlert("missing_field", "alert has no objectId")
        return Prepared(image, metadata_vector(candidate, record.get("prv_candidates")))
    except InvalidAlert as exc:
        return Reject.from_error(exc)


def stack(items: list[Prepared]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 63, 63, 3) and (N, 25) float32 arrays of a batch."""
    return np.stack([p.triplet for p in items]), np.stack([p.metadata for p in items])
