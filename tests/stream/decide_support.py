"""Set-up of the decision-stage tests: scored alerts of many objects (real ZTF alerts
re-issued under chosen objectIds, candids, jds, magnitudes and scores, enriched by the
project's own enrich code), the stage as a child process, its events read back."""

from __future__ import annotations

import io
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Producer
from kafka_helpers import ServiceProcess, create_topic, read_topic, unique, write_config

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.engine.cards import find_card
from btsbot_stream.stream.enrich import enriched_message, score_headers, scores_field
from corpus import fits_records

MODEL = "btsbot-v1.0.1"


@dataclass(frozen=True)
class ScoredInput:
    """One message of the scored topic, and the facts the reference rules need."""

    key: str
    value: bytes
    headers: list
    row: tuple[str, int, float, float, float]  # objectId, candid, jd, magpsf, score


def scored_inputs(
    demo_alerts: Path, models_dir: Path, objects: int, seed: int = 7
) -> list[ScoredInput]:
    """``objects`` objects of 1-8 alerts each, jd-ordered per object and interleaved
    across objects by jd. Scores and magnitudes are drawn so that every policy fires on
    some objects and not on others, with values on the boundaries (0.5, 0.85, 19, 18.5)."""
    rng = random.Random(seed)
    bases = fits_records(demo_alerts)
    card = find_card(MODEL, models_dir)
    decoder = AlertDecoder()
    scores = [0.02, 0.3, 0.5, 0.51, 0.7, 0.85, 0.86, 0.97]
    mags = [17.2, 18.1, 18.5, 18.51, 18.9, 19.0, 19.4]
    inputs = []
    for k in range(objects):
        object_id = f"ZTF99dec{k:05d}"
        jd = 2460000.5 + rng.uniform(0, 5)
        for i in range(rng.randint(1, 8)):
            schema, base = rng.choice(bases)
            record = dict(base, candidate=dict(base["candidate"]))
            candid = 9_000_000_000_000_000 + k * 100 + i
            jd += rng.choice([0.0, 0.02, 0.9, 1.7])  # equal jd sometimes
            mag, score = rng.choice(mags), rng.choice(scores)
            record["objectId"] = object_id
            record["candid"] = record["candidate"]["candid"] = candid
            record["candidate"]["jd"], record["candidate"]["magpsf"] = jd, mag
            buf = io.BytesIO()
            fastavro.writer(buf, schema, [record])
            (decoded,) = decoder.decode(buf.getvalue())
            field_bytes = scores_field([card], {MODEL: score}, 1_700_000_000_000)
            value = enriched_message(decoded.schema, decoded.datum, field_bytes)
            headers = score_headers(candid, {MODEL: score})
            inputs.append(
                ScoredInput(object_id, value, headers, (object_id, candid, jd, mag, score))
            )
    return sorted(inputs, key=lambda m: (m.row[2], m.row[1]))


def produce(
    bootstrap: str,
    topic: str,
    inputs: list[ScoredInput],
    rate: float | None,
    timestamp_ms: int = 0,
) -> None:
    """Produce ``inputs`` in order (at ``rate`` per second; with ``timestamp_ms`` as
    their Kafka timestamps, else the time of producing). Idempotent, as the scorer's
    producer is: without it, retries around a broker restart can reorder a partition."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True}
    )
    for n, message in enumerate(inputs):
        producer.produce(
            topic, message.value, message.key, headers=message.headers, timestamp=timestamp_ms
        )
        producer.poll(0)
        if rate:
            time.sleep(1 / rate)
        if n % 100 == 0:
            producer.flush(30)
    producer.flush(60)


@dataclass
class DecideSetup:
    """One test's scored topic, group, candidates topic and configs."""

    bootstrap: str
    tmp: Path
    partitions: int = 3
    scored_topic: str = field(default_factory=lambda: unique("scored"))
    candidates_topic: str = field(default_factory=lambda: unique("candidates"))
    group: str = field(default_factory=lambda: unique("decide"))

    def __post_init__(self) -> None:
        create_topic(self.bootstrap, self.scored_topic, self.partitions)

    def config(self, name: str, **decide: Any) -> Path:
        return write_config(
            self.tmp / f"{name}.toml",
            kafka={
                "bootstrap_servers": self.bootstrap,
                "input_topics": ["unused-by-decide"],
                "output_topic": self.scored_topic,
                "properties": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"},
            },
            decide={
                "group_id": self.group,
                "candidates_topic": self.candidates_topic,
                "state_dir": self.tmp / f"state-{name}",
                "commit_interval_s": 0.5,
                **decide,
            },
            observability={"metrics_port": 0},
        )

    def start(self, name: str, idle: float | None = None, **decide: Any) -> ServiceProcess:
        return ServiceProcess(
            self.config(name, **decide), self.tmp / f"{name}.log", idle, command="decide"
        )

    def events(self) -> list[dict]:
        """Every committed candidate event (read_committed)."""
        return [json.loads(r.value) for r in read_topic(self.bootstrap, self.candidates_topic)]

    def event_counts(self) -> Counter[tuple[str, str]]:
        return Counter((e["objectId"], e["policy"]) for e in self.events())

    def wait_for_events(self, expected: set, timeout: float = 240) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                events = self.events()
            except Exception:  # leadership moving after a broker restart
                events = []
            if expected <= {(e["objectId"], e["policy"]) for e in events}:
                return events
            if time.monotonic() > deadline:
                return events
            time.sleep(1.0)
