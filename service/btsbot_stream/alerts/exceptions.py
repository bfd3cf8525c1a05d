"""Alert-level failures.

:class:`InvalidAlert` unwinds the processing of one alert; the boundary that handles a
message (``scoring.prepare_message``) turns it into a :class:`Reject` value, so one bad
packet never stops the others. ``reason`` is a short fixed code used as a metric label and
a dead-letter header; ``detail`` says what exactly was wrong. Every code is listed in the
README's reasons list (a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from btsbot_stream.errors import BtsbotError

Reason = Literal[
    "avro_truncated",  # the container ends early (lost bytes, a cut download)
    "avro_malformed",  # not an Avro container / wire message, or the datum does not decode
    "schema_unknown",  # a Confluent schema id we cannot resolve
    "missing_field",  # a field the features need is absent or null
    "cutout_missing",  # a stamp is null (stripped archives, some test packets)
    "cutout_jpeg",  # 2016-18 prototype packets carry JPEG stamps, not FITS
    "cutout_corrupt",  # the gzip or the FITS inside it is damaged
    "cutout_shape",  # a stamp that is not 2-D or is larger than 63x63
    "inference_failed",  # ONNX Runtime failed on the batch holding this alert
    # -- hostile and damaged input (issue #8) --
    "avro_empty",  # a container with a header and no record
    "field_invalid",  # a field of the wrong type, or a number that is NaN or infinite
    "input_unreadable",  # score: a file or archive that cannot be read (I/O, damaged tar)
    "internal_error",  # an exception nobody foresaw; the detail names its type
    # a [limits] setting refused the input before anything was allocated for it:
    "message_too_large",  # limits.max_message_bytes
    "avro_block_too_large",  # limits.max_block_bytes (after decompression)
    "avro_too_many_records",  # limits.max_records
    "array_too_long",  # limits.max_array_items
    "avro_too_deep",  # limits.max_nesting_depth (schema JSON, recursive data)
    "schema_too_large",  # limits.max_schema_bytes
    "cutout_too_large",  # limits.max_stamp_bytes (after gunzip)
]
REASONS: tuple[Reason, ...] = Reason.__args__  # type: ignore[attr-defined]


class InvalidAlert(BtsbotError):
    """One alert cannot be scored; carries the reason code and a specific detail."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Reject:
    """Why one input could not be scored (becomes an error line or a dead letter)."""

    reason: Reason
    detail: str

    @classmethod
    def from_error(cls, error: InvalidAlert) -> Reject:
        return cls(error.reason, error.detail)


class RegistryUnavailable(BtsbotError):
    """The schema registry did not answer (down, 5xx, timeout): a transient fault of the
    process, not of the alert. Decoding lets it propagate; the stream pauses, retries and
    never dead-letters the message for it."""
