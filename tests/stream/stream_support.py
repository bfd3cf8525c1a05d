"""Shared set-up of the stream tests: topics, configs, waiting for outputs."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from kafka_helpers import (
    ServiceProcess,
    create_topic,
    end_offsets,
    read_topic,
    unique,
    write_config,
)

from btsbot_stream.alerts.sources import expand, read_items
from btsbot_stream.stream.replay import replay


@dataclass
class Setup:
    """One test's topics, group and config file against the session broker."""

    bootstrap: str
    tmp: Path
    models_dir: Path
    partitions: int = 1
    delivery: dict[str, Any] = field(default_factory=dict)
    input_topic: str = field(default_factory=lambda: unique("ztf_in"))
    output_topic: str = field(default_factory=lambda: unique("scored"))
    dead_letter_topic: str = field(default_factory=lambda: unique("dlq"))
    group: str = field(default_factory=lambda: unique("group"))
    metrics_port: int | None = None
    # fail over in seconds, not the default 45 s, so the tests stay short (KIP-848 has
    # these on the broker: pass properties={"group.protocol": "consumer"} alone)
    properties: dict[str, str] = field(
        default_factory=lambda: {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}
    )
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # more config sections

    def __post_init__(self) -> None:
        create_topic(self.bootstrap, self.input_topic, self.partitions)

    def config(self, name: str = "config.toml", **delivery: Any) -> Path:
        return write_config(
            self.tmp / name,
            kafka={
                "bootstrap_servers": self.bootstrap,
                "group_id": self.group,
                "input_topics": [self.input_topic],
                "output_topic": self.output_topic,
                "dead_letter_topic": self.dead_letter_topic,
                "properties": self.properties,
                **self.extra.get("kafka", {}),
            },
            engine={"models_dir": self.models_dir, "device": "cpu", "batch_size": 64},
            delivery={**self.delivery, **delivery},
            observability={"metrics_port": self.metrics_port or 0},
            **{k: v for k, v in self.extra.items() if k != "kafka"},
        )

    def start(self, name: str = "service", idle: float | None = None, **delivery: Any):
        return ServiceProcess(
            self.config(f"{name}.toml", **delivery), self.tmp / f"{name}.log", idle
        )

    def replay(self, folder: Path | list[Path], rate: float | None = None) -> int:
        items = read_items(expand(folder if isinstance(folder, list) else [folder]))
        return replay(items, {"bootstrap.servers": self.bootstrap}, self.input_topic, rate)

    def replay_in_background(self, folder: Path | list[Path], rate: float) -> threading.Thread:
        thread = threading.Thread(target=self.replay, args=(folder, rate), daemon=True)
        thread.start()
        return thread

    def outputs_written(self) -> int:
        """Messages in the output topic so far (any isolation; a progress signal only)."""
        try:
            return sum(end_offsets(self.bootstrap, self.output_topic, 1).values())
        except Exception:
            return 0

    def wait_for_outputs(self, at_least: int, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while self.outputs_written() < at_least:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {at_least} outputs after {timeout} s")
            time.sleep(0.3)

    def candids(self) -> Counter[int]:
        """How many times each candid appears in the output topic (read_committed)."""
        records = read_topic(self.bootstrap, self.output_topic)
        return Counter(int(r.headers["ztf.candid"]) for r in records)

    def wait_for_candids(self, expected: set[int], timeout: float = 240) -> Counter[int]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                seen = self.candids()
            except KafkaException:  # e.g. leadership moving after a broker restart
                seen = Counter()
            if expected <= set(seen) or time.monotonic() > deadline:
                return seen
            time.sleep(1.0)


REPORTS: list[str] = []  # printed in pytest's terminal summary (tests/stream/conftest.py)


def report(
    name: str, seen: Counter[int], expected: set[int], dead_letters: int | None = None
) -> str:
    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    missing = len(expected - set(seen))
    line = (
        f"{name}: {len(expected)} alerts, {sum(seen.values())} outputs, "
        f"{missing} missing, {duplicates} duplicates"
    )
    if dead_letters is not None:
        line += f", {dead_letters} dead letters"
    REPORTS.append(line)
    return line
