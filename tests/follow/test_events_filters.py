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

# The decision stage's event as its guide documents it (event_version 1).
EVENT = {
    "event_version": 1, "objectId": "ZTF20aajcdad", "policy": "bts_p1",
    "candid": 1127536316315015004, "jd": 2458882.0363194, "magpsf": 17.505842208862305,
    "fid": 2, "ra": 201.6235627, "dec": 36.0086524, "brightest_magpsf": 17.505842208862305,
    "late": False, "arrived_candid": 1127536316315015004, "n_alerts": 2,
    "history": [
        {"jd": 2458881.9954051, "candid": 1127495406315015005, "fid": 1,
         "magpsf": 17.546560287475586, "scores": {"btsbot-v1.0.1": 0.9996846914291382}},
        {"jd": 2458882.0363194, "candid": 1127536316315015004, "fid": 2,
         "magpsf": 17.505842208862305, "scores": {"btsbot-v1.0.1": 0.999690055847168}}],
    "policy_definition": {"name": "bts_p1", "model": "btsbot-v1.0.1", "score_threshold": 0.5},
    "models": [{"model": "btsbot-v1.0.1", "version": "1.0.1", "sha256": "747790d6"}],
    "service_version": "0.1.0", "decided_at": 1796109100152,
}  # fmt: skip


def test_json_event_is_read_with_its_history() -> None:
    event = decode_event(json.dumps(EVENT).encode())
    assert (event.object_id, event.policy, event.candid, event.fid) == (
        "ZTF20aajcdad", "bts_p1", 1127536316315015004, 2,
    )  # fmt: skip
    assert (event.ra, event.dec) == (201.6235627, 36.0086524)
    assert event.peak_mag == 17.505842208862305
    assert event.latest_scores == {"btsbot-v1.0.1": 0.999690055847168}
    assert [h.candid for h in event.history] == [1127495406315015005, 1127536316315015004]
    assert event.models == {"btsbot-v1.0.1": "1.0.1"}
    assert set(event.extra) == {
        "event_version", "late", "arrived_candid", "n_alerts", "policy_definition", "decided_at",
    }  # fmt: skip


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
    env = {"BTSBOT_KAFKA__PROPERTIES__sasl.password": "from-a-secret", "OTHER": "x"}
    bootstrap, props = client_properties(path, ["sasl.mechanism=SCRAM-SHA-512"], env)
    assert bootstrap == "b:9093"
    assert props == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.password": "from-a-secret",
    }
