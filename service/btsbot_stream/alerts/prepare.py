"""Decoded alert -> model inputs (triplet + metadata), or a Reject saying why not."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from btsbot_stream.alerts.avro import DecodedAlert
from btsbot_stream.alerts.exceptions import InvalidAlert, Reject
from btsbot_stream.alerts.features import metadata_vector
from btsbot_stream.alerts.stamps import MAX_STAMP_BYTES, triplet


@dataclass(frozen=True, eq=False)
class Rows:
    """Arrays of a whole batch that prepared alerts can be rows of (a shared-memory slot
    written by a preparation worker), so a batch laid out in order reaches the models
    without a copy."""

    triplets: np.ndarray  # (capacity, 63, 63, 3) float32
    metadata: np.ndarray  # (capacity, 25) float32


@dataclass(slots=True)
class Prepared:
    """What the models need for one alert."""

    triplet: np.ndarray  # (63, 63, 3) float32
    metadata: np.ndarray  # (25,) float32
    rows: Rows | None = None  # the batch arrays ``triplet`` and ``metadata`` are row ``row`` of
    row: int = -1


def identity(alert: DecodedAlert) -> tuple[str | None, int | None]:
    """(objectId, candid) as far as the record has them with the right types; never
    raises, whatever the record holds (they key outputs and dead letters)."""
    record = alert.record
    candidate = record.get("candidate")
    candid = record.get("candid")
    if candid is None and isinstance(candidate, dict):
        candid = candidate.get("candid")
    object_id = record.get("objectId")
    return (
        object_id if isinstance(object_id, str) else None,
        candid if type(candid) is int else None,
    )


def prepare(alert: DecodedAlert, max_stamp_bytes: int = MAX_STAMP_BYTES) -> Prepared | Reject:
    record = alert.record
    try:
        # first: stamp problems are the most specific reason
        image = triplet(record, max_stamp_bytes=max_stamp_bytes)
        candidate = record.get("candidate")
        if candidate is None:
            raise InvalidAlert("missing_field", "alert has no candidate record")
        if not isinstance(candidate, dict):
            raise InvalidAlert("field_invalid", f"candidate is {type(candidate).__name__}")
        object_id = record.get("objectId")
        if object_id is None:
            raise InvalidAlert("missing_field", "alert has no objectId")
        if not isinstance(object_id, str):
            raise InvalidAlert("field_invalid", f"objectId is {type(object_id).__name__}")
        return Prepared(image, metadata_vector(candidate, record.get("prv_candidates")))
    except InvalidAlert as exc:
        return Reject.from_error(exc)


def stack(items: list[Prepared]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 63, 63, 3) and (N, 25) float32 arrays of a batch."""
    return np.stack([p.triplet for p in items]), np.stack([p.metadata for p in items])
