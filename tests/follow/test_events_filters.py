"""Candidate-event decoding, filters, the repeat memory, Kafka error messages."""

from __future__ import annotations

import io
import json

import fastavro
import pytest
from confluent_kafka import KafkaError

from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.follow.dedup import RecentKeys
from btsbot_stream.follow.events import decode_event
from btsbot_stream.follow.exceptions import BrokerUnreachable, NotAuthorized, UnknownTopic
from btsbot_stream.follow.filters import ANY_MODEL, Cone, Filters
from btsbot_stream.follow.items import FollowItem, header_scores
from btsbot_stream.follow.kafka import classify, client_properties

EVENT = {
    "objectId": "ZTF20aajcdad",
    "policy": "bts_p2",
    "candid": 1127536316315015004,
    "jd": 2458882.0363194,
    "magpsf": 17.51,
    "position": {"ra": 201.6235643, "dec": 36.0086571},
    "peakmag_so_far": 17.51,
    "score_history": [
        {"jd": 2458881.99, "candid": 1127495406315015005, "scores": {"btsbot-v1.0.1": 0.97}},
        {"jd": 2458882.03, "candid": 1127536316315015004, "scores": {"btsbot-v1.0.1": 0.99}},
    ],
    "models": [{"name": "btsbot-v1.0.1", "version": "1.0.1"}],
    "service_version": "0.1.0",
    "note": "kept in extra",
}


def test_json_event_is_read_with_its_history() -> None:
    event = decode_event(json.dumps(EVENT).encode())
    assert (event.object_id, event.policy, event.candid) == (
        "ZTF20aajcdad",
        "bts_p2",
        1127536316315015004,
    )
    assert (event.ra, event.dec, event.peak_mag) == (201.6235643, 36.0086571, 17.51)
    assert event.latest_scores == {"btsbot-v1.0.1": 0.99}
    assert event.models == {"btsbot-v1.0.1": "1.0.1"}
    assert event.extra == {"note": "kept in extra"}


def test_other_spellings_and_avro_container() -> None:
    flat = {
        "object_id": "ZTF1",
        "policy": "prod_p1",
        "ra": 1.5,
        "dec": -2.5,
        "brightest_mag": 18.0,
        "scores": {"btsbot-v1.0.1": [{"jd": 1.0, "score": 0.9}]},
        "models": {"btsbot-v1.0.1": "1.0.1"},
    }
    event = decode_event(json.dumps(flat).encode())
    assert (event.object_id, event.ra, event.dec, event.peak_mag) == ("ZTF1", 1.5, -2.5, 18.0)
    assert event.latest_scores == {"btsbot-v1.0.1": 0.9}
    schema = {
        "type": "record",
        "name": "candidate_event",
        "fields": [
            {"name": "objectId", "type": "string"},
            {"name": "policy", "type": "string"},
            {"name": "magpsf", "type": ["null", "double"]},
        ],
    }
    buf = io.BytesIO()
    fastavro.writer(buf, schema, [{"objectId": "ZTF2", "policy": "bts_p1", "magpsf": 18.2}])
    avro = decode_event(buf.getvalue())
    assert (avro.object_id, avro.policy, avro.magpsf) == ("ZTF2", "bts_p1", 18.2)


@pytest.mark.parametrize("value", [b"not json", b"{broken", b'{"policy": "bts_p1"}', b"[1, 2]"])
def test_bad_events_are_values_with_a_reason(value: bytes) -> None:
    with pytest.raises(InvalidAlert):
        decode_event(value)


def _item(**fields: object) -> FollowItem:
    base: dict[str, object] = {"kind": "alert", "topic": "t", "partition": 0, "offset": 0}
    return FollowItem(timestamp_ms=0, **{**base, **fields})  # type: ignore[arg-type]


def test_score_filter_decides_on_headers_alone() -> None:
    scores, candid = header_scores(
        [("btsbot.score.a", b"0.91"), ("btsbot.score.b", b"6.2e-07"), ("ztf.candid", b"42")]
    )
    assert scores == {"a": 0.91, "b": 6.2e-07} and candid == 42
    per_model = Filters(min_scores={"a": 0.5})
    every = Filters(min_scores={ANY_MODEL: 0.5})
    assert per_model.on_headers(_item(scores=scores)) is None  # passes: decode next
    assert every.on_headers(_item(scores=scores)) is False  # b fails: never decoded
    assert Filters(min_scores={"c": 0.1}).on_headers(_item(scores=scores)) is False
    assert Filters(policies=frozenset({"bts_p1"})).on_headers(_item(scores=scores)) is False


def test_decoded_filters() -> None:
    item = _item(scores={"a": 0.7}, magpsf=18.2, fid=2, ra=10.0, dec=20.0)
    assert Filters(mag_max=18.5).accepts(item) and not Filters(mag_max=18.0).accepts(item)
    assert not Filters(mag_min=18.3).accepts(item)
    assert Filters(bands=frozenset({2})).accepts(item)
    assert not Filters(bands=frozenset({1})).accepts(item)
    # 1 arcsec north of the alert: inside a 1.5" cone, outside a 0.5" one
    assert Filters(cone=Cone(10.0, 20.0 + 1 / 3600, 1.5)).accepts(item)
    assert not Filters(cone=Cone(10.0, 20.0 + 1 / 3600, 0.5)).accepts(item)
    # near the pole, 1 degree of RA is far less than 1 degree on the sky
    polar = _item(ra=180.0, dec=89.9)
    assert Filters(cone=Cone(181.0, 89.9, 7.0)).accepts(polar)  # ~6.3 arcsec apart
    assert not Filters(mag_max=19).accepts(_item())  # no magnitude: does not pass
    event = _item(kind="candidate", policy="bts_p2")
    assert Filters(policies=frozenset({"bts_p2"})).accepts(event)
    assert not Filters(policies=frozenset({"bts_p1"})).accepts(event)


def test_repeat_memory_is_bounded() -> None:
    memory = RecentKeys(3, initial=[1, 2])
    assert 1 in memory and 3 not in memory
    for key in (3, 4):
        memory.add(key)
    assert (
        len(memory) == 3 and 1 not in memory and {2, 3, 4} <= {k for k in (2, 3, 4) if k in memory}
    )


def test_kafka_errors_say_what_to_fix() -> None:
    unreachable = classify(KafkaError(KafkaError._TRANSPORT), "topic 't'", "h:9092")
    assert isinstance(unreachable, BrokerUnreachable) and "h:9092" in str(unreachable)
    unknown = classify(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART), "topic 't'", "h:9092")
    assert isinstance(unknown, UnknownTopic) and "does not exist" in str(unknown)
    for code in (
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.SASL_AUTHENTICATION_FAILED,
    ):
        denied = classify(KafkaError(code), "topic 't'", "h:9092")
        assert isinstance(denied, NotAuthorized) and "ACL" in str(denied)


def test_properties_from_file_then_x(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "service.toml"
    path.write_text(
        '[kafka]\nbootstrap_servers = "b:9093"\n[kafka.properties]\n'
        '"security.protocol" = "SASL_SSL"\n"sasl.mechanism" = "PLAIN"\n'
    )
    bootstrap, props = client_properties(path, ["sasl.mechanism=SCRAM-SHA-512"])
    assert bootstrap == "b:9093"
    assert props == {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512"}
