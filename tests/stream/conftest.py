"""Fixtures of the stream tests: one real Apache Kafka broker (KRaft) for the session,
started with the project's own runner (deploy/kafka), and alert corpora on disk."""

from __future__ import annotations

import io
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import fastavro
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy" / "kafka"))
from local_kafka import LocalKafka  # noqa: E402

COPIES = 6  # 550 good alerts x 6 = 3,300 alerts for the crash tests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    broker = LocalKafka(port=free_port(), data_dir=tmp_path_factory.mktemp("kafka"))
    broker.start(timeout=180)
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def many_alerts(ztf: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[int]]:
    """The corpus's good alerts, copied under new candids; returns (folder, candids)."""
    folder = tmp_path_factory.mktemp("many")
    candids: set[int] = set()
    for path in sorted((ztf / "alerts").rglob("*.avro")):
        with path.open("rb") as fh:
            reader = fastavro.reader(fh)
            schema = reader.writer_schema
            (record,) = reader
        if record["cutoutScience"]["stampData"][:2] == b"\xff\xd8":
            continue  # JPEG prototypes are dead letters, not part of this corpus
        for copy in range(COPIES):
            candid = record["candid"] % 10**17 + copy * 10**17
            record["candid"] = record["candidate"]["candid"] = candid
            buf = io.BytesIO()
            fastavro.writer(buf, schema, [record])
            (folder / f"{candid}.avro").write_bytes(buf.getvalue())
            candids.add(candid)
    assert len(candids) == 550 * COPIES
    return folder, candids


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from stream_support import REPORTS

    if REPORTS:
        terminalreporter.section("delivery: alerts lost and duplicated")
        for line in REPORTS:
            terminalreporter.write_line(line)
