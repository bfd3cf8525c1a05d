"""Reason codes: one list in the code (``alerts.exceptions.Reason``), the same list in the
README and the guides; repeated faults logged once per interval."""

from __future__ import annotations

import logging
import re

import pytest

from btsbot_stream.alerts.exceptions import REASONS
from btsbot_stream.log_limit import LogLimiter
from corpus import REPO

DOCS = ("README.md", "docs/operator-guide.md", "docs/output-format.md")


@pytest.mark.parametrize("doc", DOCS)
def test_every_reason_is_documented(doc: str):
    text = (REPO / doc).read_text()
    listed = set(re.findall(r"`([a-z0-9]+(?:_[a-z0-9]+)+)`", text))
    missing = [reason for reason in REASONS if reason not in listed]
    assert not missing, f"{doc} does not list {missing}"


def test_reasons_are_unique_snake_case():
    assert len(set(REASONS)) == len(REASONS)
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)+", r) for r in REASONS)


def test_log_limiter_logs_once_per_interval_with_a_count(caplog: pytest.LogCaptureFixture):
    now = [0.0]
    limiter = LogLimiter(logging.getLogger("t"), interval_s=60.0, clock=lambda: now[0])
    with caplog.at_level(logging.ERROR, logger="t"):
        assert limiter.error("a", "fault %s", "x")
        assert not limiter.error("a", "fault %s", "x")
        assert limiter.error("b", "other")  # another key is not held back
        now[0] = 30.0
        assert not limiter.error("a", "fault %s", "x")
        now[0] = 61.0
        assert limiter.error("a", "fault %s", "x")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["fault x", "other", "fault x (2 more since the last such line)"]
