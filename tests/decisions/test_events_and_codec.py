"""Candidate events as documented, and the stage's reading of scored messages: a real
alert enriched by the scorer's own code decodes to its candidate fields and scores;
what cannot be read becomes a value with its reason, never an exception."""

from __future__ import annotations

import json
import re
from pathlib import Path

import fastavro
import pytest

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.decisions.alerts import ScoredAlert
from btsbot_stream.decisions.decide import observe
from btsbot_stream.decisions.events import candidate_event
from btsbot_stream.decisions.policies import BUILTIN_POLICIES
from btsbot_stream.engine.cards import find_card
from btsbot_stream.stream.decide.codec import (
    ScoredDeserializer,
    ScoredMessage,
    Unreadable,
    scored_message,
)
from btsbot_stream.stream.enrich import enriched_message, scores_field

REPO = Path(__file__).resolve().parents[2]
ALERT = REPO / "deploy/demo/alerts/20200202/1127536316315015004.avro"


def _event() -> dict:
    alert = ScoredAlert(1, 2459000.5, 1, 18.0, 1.0, 2.0, {"btsbot-v1.0.1": 0.99})
    seen = observe(None, alert, BUILTIN_POLICIES, 60)
    models = {"btsbot-v1.0.1": {"version": "1.0.1", "sha256": "ab"}}
    return candidate_event("ZTF1", seen.fires[0], seen.state, models, 5)


def test_the_follow_up_guide_shows_every_event_field() -> None:
    text = (REPO / "docs/follow-up-guide.md").read_text()
    example = next(b for b in re.findall(r"```json\n(.*?)```", text, re.DOTALL) if "policy" in b)
    assert json.loads(example).keys() == _event().keys()
    output_format = (REPO / "docs/output-format.md").read_text()
    section = output_format[output_format.index("## Candidates topic") :]
    for key in _event():
        assert f"`{key}`" in section, key


def _scored_bytes(score: float) -> bytes:
    (decoded,) = AlertDecoder().decode(ALERT.read_bytes())
    card = find_card("btsbot-v1.0.1", REPO / "models")
    return enriched_message(
        decoded.schema, decoded.datum, scores_field([card], {card.name: score}, 0)
    )


def test_a_scored_alert_decodes_to_its_candidate_and_scores() -> None:
    (message,) = ScoredDeserializer()(_scored_bytes(0.75))
    assert isinstance(message, ScoredMessage)
    with ALERT.open("rb") as fh:
        (record,) = fastavro.reader(fh)
    cand = record["candidate"]
    assert message.object_id == record["objectId"] == "ZTF20aajcdad"
    alert = message.alert
    assert (alert.candid, alert.jd, alert.fid) == (cand["candid"], cand["jd"], cand["fid"])
    assert (alert.magpsf, alert.ra, alert.dec) == (cand["magpsf"], cand["ra"], cand["dec"])
    assert alert.scores == {"btsbot-v1.0.1": 0.75}
    assert (
        message.models["btsbot-v1.0.1"]["sha256"]
        == find_card("btsbot-v1.0.1", REPO / "models").sha256
    )


def _unscored() -> bytes:
    return ALERT.read_bytes()  # a plain ZTF alert: no btsbot field


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: _scored_bytes(0.5)[:-40], "avro_truncated"),
        (lambda: b"not avro at all", "avro_malformed"),
        (_unscored, "not_scored"),
    ],
)
def test_what_cannot_be_read_is_a_value_with_its_reason(make, reason: str) -> None:
    (item,) = ScoredDeserializer()(make())
    assert isinstance(item, Unreadable) and item.reason == reason, item


def test_a_record_without_its_position_is_missing_a_field() -> None:
    record = {"objectId": "ZTF1", "candidate": {"candid": 1, "jd": 2.0, "fid": 1, "magpsf": 18}}
    item = scored_message({**record, "btsbot": {"scores": [{"model": "m", "score": 0.9}]}})
    assert isinstance(item, Unreadable) and item.reason == "missing_field"
    assert "ra" in item.detail and "dec" in item.detail
