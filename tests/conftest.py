"""Shared fixtures (where the data come from: see ``tests/corpus.py``).

Without the shared corpus, the tests that need it are set aside with one message; under
``BTSBOT_REQUIRE_SHARED=1`` (CI sets it: a green run without the real data would prove
nothing) they run and fail instead.
"""

from __future__ import annotations

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
