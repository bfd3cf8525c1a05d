"""Outcomes of one input message -> the output messages to produce.

A scored alert goes to the output topic (enriched Avro, key objectId, score headers)
and, when configured, to the compact topic; anything else goes to the dead-letter topic
as the original bytes with the reason in its headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from btsbot_stream.alerts.exceptions import Reject
from btsbot_stream.config import KafkaSettings
from btsbot_stream.engine.cards import ModelCard
from btsbot_stream.scoring import Outcome
from btsbot_stream.stream import enrich
from btsbot_stream.stream.compact import compact_record
from btsbot_stream.stream.dead_letters import SourcePosition, dead_letter_headers

Headers = list[tuple[str, str | bytes | None]]


@dataclass(frozen=True, slots=True)
class OutputMessage:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    reason: str | None = None  # set for dead letters (metric label)


def _key(outcome: Outcome) -> bytes | None:
    return outcome.object_id.encode() if outcome.object_id else None


class Publisher:
    def __init__(self, kafka: KafkaSettings, cards: Sequence[ModelCard]) -> None:
        self._kafka = kafka
        self._cards = list(cards)

    def outputs(
        self, raw: bytes, source: SourcePosition, outcomes: Sequence[Outcome]
    ) -> list[OutputMessage]:
        now = enrich.now_ms()
        out: list[OutputMessage] = []
        multi = len(outcomes) > 1
        for index, outcome in enumerate(outcomes):
            if outcome.reject is None:
                try:
                    out.extend(self._scored(outcome, now))
                    continue
                except ValueError as exc:  # e.g. an input that already carries scores
                    outcome.reject = Reject("avro_malformed", str(exc))
            headers = dead_letter_headers(outcome.reject, source, now, index if multi else None)
            out.append(
                OutputMessage(
                    self._kafka.dead_letter_topic,
                    _key(outcome),
                    raw,
                    headers,
                    outcome.reject.reason,
                )
            )
        return out

    def _scored(self, outcome: Outcome, now: int) -> list[OutputMessage]:
        alert = outcome.alert
        assert alert is not None
        field = enrich.scores_field(self._cards, outcome.scores, now)
        value = enrich.enriched_message(alert.schema, alert.datum, field)
        headers = enrich.score_headers(outcome.candid, outcome.scores)
        out = [OutputMessage(self._kafka.output_topic, _key(outcome), value, headers)]
        if self._kafka.compact_topic:
            out.append(
                OutputMessage(
                    self._kafka.compact_topic, _key(outcome), compact_record(outcome), headers
                )
            )
        return out
