"""Scored alerts for the follow-up tools' tests: the demo sample scored by the shipped
production model through the service's own scoring and publishing code, i.e. the exact
messages the service would publish on its scored topic (no broker needed to make them).
"""

from __future__ import annotations

import functools
import io
from dataclasses import replace
from typing import Any

import fastavro

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.sources import expand, read_items
from btsbot_stream.config import EngineSettings, KafkaSettings
from btsbot_stream.scoring import load_scorer, prepare_message
from btsbot_stream.stream.dead_letters import SourcePosition
from btsbot_stream.stream.publish import OutputMessage, Publisher
from corpus import DEMO_ALERTS, REPO_MODELS

MODEL = "btsbot-v1.0.1"
SCORED = "scored"


@functools.cache
def demo_scored() -> tuple[OutputMessage, ...]:
    """One scored-topic message per scoreable alert of the demo sample (29)."""
    engine = EngineSettings(models_dir=REPO_MODELS, device="cpu", warmup=False)
    scorer = load_scorer(engine)
    publisher = Publisher(
        KafkaSettings(input_topics=("in",), output_topic=SCORED), [m.card for m in scorer.models]
    )
    decoder = AlertDecoder()
    out: list[OutputMessage] = []
    for offset, item in enumerate(read_items(expand([DEMO_ALERTS]))):
        outcomes = scorer.score([prepare_message(decoder, item.data)])[0]
        source = SourcePosition("in", 0, offset)
        out += [m for m in publisher.outputs(item.data, source, outcomes) if m.topic == SCORED]
    assert len(out) == 29
    return tuple(out)


def headers_of(msg: OutputMessage) -> dict[str, bytes]:
    return {k: v if isinstance(v, bytes) else str(v).encode() for k, v in msg.headers}


def score_of(msg: OutputMessage, model: str = MODEL) -> float:
    return float(headers_of(msg)[f"btsbot.score.{model}"])


def candid_of(msg: OutputMessage) -> int:
    return int(headers_of(msg)["ztf.candid"])


def record_of(msg: OutputMessage) -> dict[str, Any]:
    """The whole scored alert, read with fastavro (independent of the code under test)."""
    (record,) = fastavro.reader(io.BytesIO(msg.value))
    assert isinstance(record, dict)
    return record


def variant(
    msg: OutputMessage, candid: int, object_id: str | None = None, **candidate: Any
) -> OutputMessage:
    """The same scored alert under another candid (objectId, candidate fields)."""
    reader = fastavro.reader(io.BytesIO(msg.value))
    schema = reader.writer_schema
    (record,) = reader
    assert isinstance(record, dict)
    record["candid"] = record["candidate"]["candid"] = candid
    record["candidate"].update(candidate)
    if object_id is not None:
        record["objectId"] = object_id
    buf = io.BytesIO()
    fastavro.writer(buf, schema, [record])
    headers = [(k, str(candid).encode() if k == "ztf.candid" else v) for k, v in msg.headers]
    key = (object_id or record["objectId"]).encode()
    return replace(msg, key=key, value=buf.getvalue(), headers=headers)
