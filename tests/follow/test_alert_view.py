"""The follow-up tools read scored alerts with the service's decoder: the projections
keep what a view shows (the scores whole) and drop the rest; damaged or oversized
messages are alert-level errors with the decoder's reasons."""

from __future__ import annotations

import pytest

from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.config import LimitSettings
from btsbot_stream.follow.alert_view import CANDIDATE_VIEW, HISTORY_VIEW, PAGE, ROW, AlertReader
from scored_alerts import demo_scored, record_of

STAMPS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")


def test_a_row_keeps_the_candidate_view_and_the_whole_scores() -> None:
    reader = AlertReader(ROW)
    for msg in demo_scored():
        want = record_of(msg)  # fastavro.reader over the whole alert
        got = reader.read(msg.value)
        assert set(got) == {"objectId", "candid", "candidate", "btsbot"}
        assert got["objectId"] == want["objectId"] and got["candid"] == want["candid"]
        assert got["candidate"] == {
            k: v for k, v in want["candidate"].items() if k in CANDIDATE_VIEW
        }
        assert got["btsbot"] == want["btsbot"]  # a record type no projection names


def test_a_page_adds_the_history_and_the_stamps() -> None:
    reader = AlertReader(PAGE)
    for msg in demo_scored()[:5]:
        want = record_of(msg)
        got = reader.read(msg.value)
        assert set(got) == {"objectId", "candid", "candidate", "prv_candidates", "btsbot", *STAMPS}
        assert got["prv_candidates"] == [
            {k: v for k, v in p.items() if k in HISTORY_VIEW} for p in want["prv_candidates"]
        ]
        for stamp in STAMPS:
            assert got[stamp] == {
                "fileName": want[stamp]["fileName"],
                "stampData": want[stamp]["stampData"],
            }


def test_damaged_and_oversized_messages_are_alert_errors() -> None:
    value = demo_scored()[0].value
    with pytest.raises(InvalidAlert) as cut:
        AlertReader(ROW).read(value[: len(value) // 2])
    assert cut.value.reason == "avro_truncated"
    with pytest.raises(InvalidAlert) as other:
        AlertReader(ROW).read(b"not an alert")
    assert other.value.reason == "avro_malformed"
    small = LimitSettings(max_message_bytes=len(value) - 1)
    with pytest.raises(InvalidAlert) as large:
        AlertReader(ROW, small).read(value)
    assert large.value.reason == "message_too_large"
