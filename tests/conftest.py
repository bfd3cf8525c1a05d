"""Shared fixtures (where the data come from: see ``tests/corpus.py``).

Without the shared corpus, the tests that need it are set aside with one message; under
``BTSBOT_REQUIRE_SHARED=1`` (CI sets it: a green run without the real data would prove
nothing) they run and fail instead.
"""

from __future__ import annotations

import secrets
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corpus import (
    DEMO_ALERTS,
    EXAMPLE_DIR,
    REPO_MODELS,
    AlertSet,
    alert_set,
    missing_message,
    require_shared,
    shared_present,
    shared_required,
    shared_root,
)

_SET_ASIDE = pytest.StashKey[int]()


def _needs_shared(item: pytest.Item) -> bool:
    if "shared" in getattr(item, "fixturenames", ()):
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    return "shared" in (params.get("real_alerts"), params.get("stream_corpus"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without the corpus, set its tests aside: one summary line, not one per test."""
    if shared_present() or shared_required():
        return
    aside = [item for item in items if _needs_shared(item)]
    if aside:
        items[:] = [item for item in items if not _needs_shared(item)]
        config.hook.pytest_deselected(items=aside)
        config.stash[_SET_ASIDE] = len(aside)


def pytest_report_header(config: pytest.Config) -> str:
    return f"shared corpus: {shared_root() if shared_present() else 'not found'}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    aside = terminalreporter.config.stash.get(_SET_ASIDE, 0)
    if aside:
        terminalreporter.write_line(f"SKIPPED {aside} tests: {missing_message()}", yellow=True)


@pytest.fixture(scope="session")
def shared() -> Path:
    return require_shared()


@pytest.fixture(scope="session")
def ztf(shared: Path) -> Path:
    return shared / "data" / "ztf"


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The repository's model folder, holding the shipped production model."""
    return REPO_MODELS


@pytest.fixture(scope="session")
def example_dir() -> Path:
    """The authors' 39 preprocessed examples and expected scores (shipped)."""
    return EXAMPLE_DIR


@pytest.fixture(scope="session")
def demo_alerts() -> Path:
    return DEMO_ALERTS


@pytest.fixture(scope="session", params=["demo", "shared"])
def real_alerts(request: pytest.FixtureRequest) -> AlertSet:
    """The demo sample's packets, then the shared corpus's (set aside when absent)."""
    return alert_set(request.param)


@dataclass(frozen=True)
class SecureBroker:
    """A real broker with a PLAINTEXT and a SASL_SSL (SCRAM-SHA-512) listener."""

    plaintext: str
    sasl_ssl: str
    ca: Path  # the CA that signed the broker's certificate
    user: str
    password: str

    def client(self, password: str | None = None, ca: Path | None = None) -> dict[str, str]:
        """librdkafka properties for the SASL_SSL listener."""
        return {
            "bootstrap.servers": self.sasl_ssl,
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": self.user,
            "sasl.password": self.password if password is None else password,
            "ssl.ca.location": str(ca or self.ca),
        }


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """A second broker for the security path and the image smoke run: a CA and broker
    certificate made now (openssl), a SCRAM user with a random password."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "kafka"))
    from local_kafka import LocalKafka, make_test_tls

    root = tmp_path_factory.mktemp("secure-kafka")
    ca, keystore = make_test_tls(root / "tls")
    password = secrets.token_urlsafe(24)
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    broker = LocalKafka(
        ports[0],
        root / "data",
        sasl_ssl_port=ports[1],
        scram_users={"btsbot": password},
        keystore=keystore,
    )
    broker.start(timeout=180)
    yield SecureBroker(broker.bootstrap, broker.sasl_ssl_bootstrap, ca, "btsbot", password)
    broker.stop()
