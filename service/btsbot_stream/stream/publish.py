"""Outcomes of one input message -> the output messages to produce.

Each scored record goes to the output topic (enriched Avro, key objectId, score headers)
and, when configured, to the compact topic. Whatever failed in the message, whole or in
some of its records, becomes **one** dead letter for the message (its original bytes,
the record count and which records failed), so every input message is accounted for by
its outputs and at most one dead letter.

An output larger than its topic accepts (see ``limits``) is not produced: its record
joins the message's dead letter with ``output_too_large``; a dead letter larger than
the dead-letter topic accepts is replaced by a small JSON reference record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from btsbot_stream.config import KafkaSettings
from btsbot_stream.engine.cards import ModelCard
from btsbot_stream.scoring import Outcome
from btsbot_stream.stream import enrich
from btsbot_stream.stream.compact import compact_record
from btsbot_stream.stream.dead_letters import (
    Failure,
    Headers,
    SourcePosition,
    dead_letter_headers,
    reference_record,
)
from btsbot_stream.stream.limits import TopicLimits, record_size

Kind = Literal["scored", "compact", "dead_letter", "reference"]


@dataclass(frozen=True, slots=True)
class Origin:
    """The input message an output was made from (to replace the output if refused)."""

    raw: bytes
    source: SourcePosition
    object_id: str | None
    candid: int | None
    records: int | None


@dataclass(frozen=True, slots=True)
class OutputMessage:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    kind: Kind
    origin: Origin
    reason: str | None = None  # dead letters: the metric label

    @property
    def size(self) -> int:
        return record_size(self.key, self.value, self.headers)


class Publisher:
    def __init__(
        self, kafka: KafkaSettings, cards: Sequence[ModelCard], limits: TopicLimits | None = None
    ) -> None:
        self._kafka = kafka
        self._cards = list(cards)
        self.limits = limits or TopicLimits()

    def outputs(
        self,
        raw: bytes,
        source: SourcePosition,
        outcomes: Sequence[Outcome],
        refused: bool = False,
    ) -> list[OutputMessage]:
        """``refused``: the broker refused this message's outputs as too large before."""
        now = enrich.now_ms()
        first = next((o for o in outcomes if o.object_id), None)
        decoded = bool(outcomes) and outcomes[0].alert is not None
        origin = Origin(
            raw,
            source,
            first.object_id if first else None,
            first.candid if first else None,
            len(outcomes) if decoded else None,
        )
        out: list[OutputMessage] = []
        failures: list[Failure] = []
        if not outcomes:  # a container without records: nothing else would account for it
            failures.append(Failure("avro_empty", "the message holds no alert record"))
        for index, outcome in enumerate(outcomes):
            position = index if decoded else None
            if outcome.reject is not None:
                failures.append(Failure(outcome.reject.reason, outcome.reject.detail, position))
                continue
            try:
                scored = self._scored(outcome, now, origin)
            except ValueError as exc:  # e.g. an input that already carries scores
                failures.append(Failure("avro_malformed", str(exc), position))
                continue
            too_large = [o for o in scored if not self.limits.fits(o.topic, o.size)]
            if too_large:
                failures.append(Failure("output_too_large", self._too_large(too_large), position))
                continue
            if refused:
                detail = "refused by the broker as too large (max.message.bytes lowered?)"
                failures.append(Failure("output_too_large", detail, position))
                continue
            out.extend(scored)
        if failures:
            out.append(self._dead_letter(origin, failures, now))
        return out

    def replacement(self, output: OutputMessage, detail: str) -> OutputMessage:
        """What to produce instead of an output the broker refused as too large."""
        now = enrich.now_ms()
        if output.kind in ("scored", "compact"):
            failure = Failure("output_too_large", detail, None)
            return self._dead_letter(output.origin, [failure], now)
        return self._reference(output.origin, Failure("output_too_large", detail), now)

    def _too_large(self, refused: Sequence[OutputMessage]) -> str:
        return "; ".join(
            f"output of {o.size} bytes over {o.topic}'s max.message.bytes "
            f"({self.limits.limit(o.topic)})"
            for o in refused
        )

    def _dead_letter(self, origin: Origin, failures: Sequence[Failure], now: int) -> OutputMessage:
        topic = self._kafka.dead_letter_topic
        headers = dead_letter_headers(failures, origin.source, now, origin.records)
        letter = OutputMessage(
            topic,
            _key(origin.object_id),
            origin.raw,
            headers,
            "dead_letter",
            origin,
            failures[0].reason,
        )
        if self.limits.fits(topic, letter.size):
            return letter
        detail = f"the input ({letter.size} bytes) is over {topic}'s max.message.bytes too"
        return self._reference(origin, Failure("output_too_large", detail), now, failures)

    def _reference(
        self,
        origin: Origin,
        failure: Failure,
        now: int,
        failures: Sequence[Failure] = (),
    ) -> OutputMessage:
        topic = self._kafka.dead_letter_topic
        detail = "; ".join(f.detail for f in (*failures, failure))
        sizes = {"input": len(origin.raw), "limit": self.limits.limit(topic)}
        value = reference_record(origin.source, origin.object_id, origin.candid, sizes, detail)
        every = [*failures, failure]
        headers = dead_letter_headers(every, origin.source, now, origin.records)
        headers.append(("error.value", b"reference"))
        return OutputMessage(
            topic, _key(origin.object_id), value, headers, "reference", origin, every[0].reason
        )

    def _scored(self, outcome: Outcome, now: int, origin: Origin) -> list[OutputMessage]:
        alert = outcome.alert
        assert alert is not None
        field = enrich.scores_field(self._cards, outcome.scores, now)
        value = enrich.enriched_message(alert.schema, alert.datum, field)
        headers = enrich.score_headers(outcome.candid, outcome.scores)
        key = _key(outcome.object_id)
        out = [OutputMessage(self._kafka.output_topic, key, value, headers, "scored", origin)]
        if self._kafka.compact_topic:
            compact = compact_record(outcome)
            out.append(
                OutputMessage(self._kafka.compact_topic, key, compact, headers, "compact", origin)
            )
        return out


def _key(object_id: str | None) -> bytes | None:
    return object_id.encode() if object_id else None
