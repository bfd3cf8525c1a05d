"""The follow-up tools read scored alerts with the service's decoder: the projections
keep what a view shows (the scores whole) and drop the rest; damaged or oversized
messages are alert-level errors with the decoder's reasons."""

from __future__ import annotations

import io

import fastavro
import pytest

from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.config import LimitSettings
from btsbot_stream.follow.alert_view import (
    CANDIDATE_VIEW,
    HEAD,
    HISTORY_VIEW,
    PAGE,
    ROW,
    AlertReader,
)
from corpus import AlertSet
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


def test_a_head_reads_the_leading_fields_only() -> None:
    """The web's list rows: objectId, candid, the candidate view, nothing after them
    (the scores come from the headers)."""
    reader = AlertReader(HEAD)
    for msg in demo_scored():
        want = record_of(msg)
        got = reader.read(msg.value)
        assert set(got) == {"objectId", "candid", "candidate"}
        assert got["objectId"] == want["objectId"] and got["candid"] == want["candid"]
        assert got["candidate"] == {
            k: v for k, v in want["candidate"].items() if k in CANDIDATE_VIEW
        }


def test_a_head_of_every_schema_version(real_alerts: AlertSet) -> None:
    """ZTF's schema versions in the corpus: the fields ahead of the history are the same
    the whole record has (read with fastavro, independently)."""
    reader = AlertReader(HEAD)
    read = 0
    for path in real_alerts.files:
        data = path.read_bytes()
        (want,) = fastavro.reader(io.BytesIO(data))
        assert isinstance(want, dict)
        got = reader.read(data)
        assert got.get("objectId") == want.get("objectId")  # alertId in a 2018 prototype
        assert got["candid"] == want["candid"]
        assert got["candidate"] == {
            k: v for k, v in want["candidate"].items() if k in CANDIDATE_VIEW
        }
        read += 1
    assert read == len(real_alerts.files) > 0


def test_a_head_takes_one_record_a_block_and_leaves_the_tail_unread() -> None:
    """A block of two alerts: the whole row reads both, the head the first only. A tail
    that is not a valid datum goes unnoticed by the head, not by the whole row."""
    (first,) = fastavro.reader(io.BytesIO(demo_scored()[0].value))
    schema = fastavro.reader(io.BytesIO(demo_scored()[0].value)).writer_schema
    two = io.BytesIO()
    fastavro.writer(two, schema, [first, {**first, "candid": 1}], sync_interval=10**7)
    assert len(AlertReader(ROW)._decoder.decode(two.getvalue())) == 2
    (head,) = AlertReader(HEAD)._decoder.decode(two.getvalue())
    assert head.record["candid"] == first["candid"]
    # the tail's first byte (the history's union branch) made a branch that does not exist
    value = bytearray(demo_scored()[0].value)
    (whole,) = AlertReader(ROW)._decoder.decode(bytes(value))
    (lead,) = AlertReader(HEAD)._decoder.decode(bytes(value))
    tail = len(value) - 16 - len(whole.datum) + len(lead.datum)  # 16: the sync marker
    value[tail] = 0x7E  # zigzag 63
    assert AlertReader(HEAD).read(bytes(value))["candid"] == first["candid"]
    with pytest.raises(InvalidAlert):
        AlertReader(ROW).read(bytes(value))


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
