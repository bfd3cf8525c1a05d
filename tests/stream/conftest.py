"""Fixtures of the stream tests: one real Apache Kafka broker (KRaft) for the session,
started with the project's own runner (deploy/kafka), and alert corpora on disk (built
from the demo sample the repository ships, so they run in a clone alone)."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import fastavro
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy" / "kafka"))
from kafka_helpers import free_port  # noqa: E402
from local_kafka import LocalKafka  # noqa: E402

from corpus import fits_records, require_shared  # noqa: E402

COPIES = 114  # the demo sample's 29 scoreable alerts x 114 = 3,306 for the crash tests


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    broker = LocalKafka(port=free_port(), data_dir=tmp_path_factory.mktemp("kafka"))
    broker.start(timeout=180)
    yield broker
    broker.stop()


@pytest.fixture(autouse=True)
def no_service_left_running() -> Iterator[None]:
    """A failed test must not leave its services running (they would load the machine)."""
    yield
    from kafka_helpers import RUNNING

    while RUNNING:
        service = RUNNING.pop()
        if service.proc.poll() is None:
            service.kill()


@pytest.fixture(scope="session", params=["demo", "shared"])
def stream_corpus(request: pytest.FixtureRequest, demo_alerts: Path) -> tuple[Path, int]:
    """(folder, packets): every packet of the demo sample, odd ones included; then the
    whole shared corpus (skipped when absent)."""
    if request.param == "demo":
        return demo_alerts, 32
    return require_shared() / "data" / "ztf", 721


@pytest.fixture(scope="session")
def many_alerts(
    demo_alerts: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, set[int]]:
    """The demo sample's good alerts, copied under new candids; returns (folder, candids)."""
    return copies_of_demo(demo_alerts, tmp_path_factory.mktemp("many"), COPIES)


@pytest.fixture(scope="session")
def some_alerts(
    demo_alerts: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, set[int]]:
    """Fewer copies (1,160 alerts), for the scenarios that start many processes."""
    return copies_of_demo(demo_alerts, tmp_path_factory.mktemp("some"), 40)


def copies_of_demo(demo_alerts: Path, folder: Path, copies: int) -> tuple[Path, set[int]]:
    """The demo sample's FITS alerts, each written ``copies`` times under new candids."""
    candids: set[int] = set()
    for schema, record in fits_records(demo_alerts):
        for copy in range(copies):
            candid = record["candid"] % 10**16 + copy * 10**16  # stays a positive long
            record["candid"] = record["candidate"]["candid"] = candid
            buf = io.BytesIO()
            fastavro.writer(buf, schema, [record])
            (folder / f"{candid}.avro").write_bytes(buf.getvalue())
            candids.add(candid)
    assert len(candids) == 29 * copies
    return folder, candids


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from stream_support import REPORTS

    if REPORTS:
        terminalreporter.section("delivery: alerts lost and duplicated")
        for line in REPORTS:
            terminalreporter.write_line(line)
