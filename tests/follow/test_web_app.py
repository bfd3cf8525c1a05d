"""The web application over a window of real scored alerts (no broker: the messages
are the ones the service publishes for the demo sample; a dict stands in for Kafka's
read-by-offset). The browser test against the real broker is in tests/stream."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from urllib.parse import quote

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from btsbot_stream.follow.alert_view import ROW, AlertReader
from btsbot_stream.follow.events import decode_event
from btsbot_stream.stream.publish import OutputMessage
from btsbot_stream.web.app import create_app
from btsbot_stream.web.feed import Position, alert_row
from btsbot_stream.web.fetch import FetchError
from btsbot_stream.web.objects import ObjectPages
from btsbot_stream.web.views import WebState
from btsbot_stream.web.window import EventRow, Window
from scored_alerts import MODEL, candid_of, demo_scored, record_of, score_of, variant

EVIL = "<img src=x onerror=alert(1)>\"'&"  # an objectId from a hostile stream
EVIL_FIELD = "</script><script>alert(2)</script>"  # in a candidate field


def _messages() -> list[OutputMessage]:
    return [*demo_scored(), variant(demo_scored()[0], 42, EVIL, ssnamenr=EVIL_FIELD)]


class DictFetcher:
    def __init__(self) -> None:
        self.values: dict[tuple[str, int, int], bytes] = {}
        self.broken = False

    def get(self, topic: str, partition: int, offset: int) -> bytes:
        if self.broken:
            raise FetchError(f"{topic}[{partition}]@{offset} is no longer on the topic")
        return self.values[(topic, partition, offset)]


def _state(token: str | None = None) -> tuple[WebState, DictFetcher]:
    window = Window(hours=48, max_alerts=1000)
    fetcher = DictFetcher()
    reader = AlertReader(ROW)
    now = int(time.time() * 1000)
    messages = _messages()
    for offset, msg in enumerate(messages):
        where = Position("scored", offset % 2, offset, now)
        fetcher.values[("scored", offset % 2, offset)] = msg.value
        row, models = alert_row(where, msg.key, msg.headers, reader.read(msg.value))
        window.note_models(models)
        window.add_alert(row)
    event = {"objectId": "ZTF20aajcdad", "policy": "bts_p2", "magpsf": 17.51, "jd": 2458882.03}
    window.add_event(EventRow(decode_event(json.dumps(event).encode()), "cand", 0, 0, now))
    return WebState(window, ObjectPages(window, fetcher)), fetcher


@pytest.fixture()
def client() -> Iterator[TestClient]:
    state, _ = _state()
    with TestClient(create_app(state)) as c:
        yield c


def _best_by_object() -> dict[str, float]:
    best: dict[str, float] = {}
    for msg in demo_scored():
        oid = (msg.key or b"").decode()
        best[oid] = max(best.get(oid, 0.0), score_of(msg))
    return best


def test_list_is_ranked_by_score_one_row_per_object(client: TestClient) -> None:
    page = client.get("/api/alerts", params={"per_page": 100}).json()
    best = _best_by_object()
    assert page["total"] == len(best) + 1  # + the crafted alert
    ranked = [i["objectId"] for i in page["items"]]
    high = {oid for oid, s in best.items() if s > 0.5}
    assert set(ranked[: len(high)]) == high
    scores = [i["scores"][MODEL] for i in page["items"]]
    assert scores == sorted(scores, reverse=True)
    every = client.get("/api/alerts", params={"per_page": 100, "per_object": "false"}).json()
    assert every["total"] == len(demo_scored()) + 1


def test_filters_change_the_list(client: TestClient) -> None:
    records = [(record_of(m), score_of(m)) for m in _messages()]
    got = client.get("/api/alerts", params={"min_score": 0.5, "per_page": 100}).json()
    assert {i["objectId"] for i in got["items"]} == {r["objectId"] for r, s in records if s >= 0.5}
    got = client.get(
        "/api/alerts", params={"mag_max": 18.5, "band": "g", "per_object": "false"}
    ).json()
    assert {i["candid"] for i in got["items"]} == {
        r["candid"]
        for r, _ in records
        if r["candidate"]["magpsf"] <= 18.5 and r["candidate"]["fid"] == 1
    }
    got = client.get("/api/alerts", params={"since": "2023-01-01T00:00", "per_object": "false"})
    assert {i["candid"] for i in got.json()["items"]} == {
        r["candid"] for r, _ in records if r["candidate"]["jd"] > 2459945.5
    }  # JD of 2023-01-01T00:00 UTC
    page2 = client.get("/api/alerts", params={"per_page": 10, "page": 2}).json()
    page1 = client.get("/api/alerts", params={"per_page": 10, "page": 1}).json()
    assert not {i["candid"] for i in page1["items"]} & {i["candid"] for i in page2["items"]}
    html = client.get("/", params={"min_score": "0.5", "mag_max": "", "band": ""})
    assert html.status_code == 200  # empty form fields mean "not set"


def test_object_page_json_and_images(client: TestClient) -> None:
    msgs = [m for m in demo_scored() if m.key == b"ZTF20aajcdad"]
    latest = max((record_of(m) for m in msgs), key=lambda r: r["candidate"]["jd"])
    doc = client.get("/api/objects/ZTF20aajcdad").json()
    assert doc["selected"]["candid"] == latest["candid"]
    assert {a["candid"] for a in doc["alerts"]} == {candid_of(m) for m in msgs}
    assert doc["scores"][0]["model"] == MODEL and doc["scores"][0]["version"] == "1.0.1"
    assert set(doc["links"]) >= {"ALeRCE", "Fink", "Lasair", "TNS"}
    limits = [p for p in latest["prv_candidates"] if p["magpsf"] is None]
    points = doc["light_curve"]["points"]
    assert len([p for p in points if p["kind"] == "upper_limit"]) == len(limits)
    assert {p["candid"] for p in points if p["kind"] == "detection"} >= {candid_of(m) for m in msgs}
    for kind, url in doc["cutouts"].items():
        reply = client.get(url)
        assert reply.status_code == 200 and reply.headers["content-type"] == "image/png", kind
        image = np.asarray(Image.open(io.BytesIO(reply.content)))
        assert image.shape[:2] == (63, 63) and image.std() > 5
    assert client.get(doc["light_curve_png"]).headers["content-type"] == "image/png"
    html = client.get("/objects/ZTF20aajcdad").text
    assert html.count('class="cutout"') == 3 and 'id="lightcurve"' in html
    assert "bts_p2" in html  # the decision for this object
    assert client.get("/objects/ZTF00nothing").status_code == 200  # a "not in window" page
    assert client.get("/api/objects/ZTF00nothing").status_code == 404


def test_everything_from_alerts_is_escaped(client: TestClient) -> None:
    listing = client.get("/", params={"per_object": "false", "per_page": 100}).text
    assert (
        "<img src=x" not in listing
        and "&lt;img src=x onerror=alert(1)&gt;&#34;&#39;&amp;" in listing
    )
    page = client.get(f"/objects/{quote(EVIL, safe='')}")
    assert page.status_code == 200
    assert "<img src=x" not in page.text and "<script>alert" not in page.text
    assert "&lt;/script&gt;&lt;script&gt;alert(2)" in page.text  # shown as text
    data = re.search(
        r'<script type="application/json" id="object-data">(.*?)</script>', page.text, re.S
    )
    assert data is not None  # the JSON block was not ended early by the field's </script>
    embedded = json.loads(data.group(1))
    assert embedded["objectId"] == EVIL and embedded["candidate"]["ssnamenr"] == EVIL_FIELD
    headers = page.headers
    assert "script-src" not in headers["content-security-policy"]  # default-src 'none'
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_read_only_and_documented(client: TestClient) -> None:
    assert client.post("/").status_code == 405
    assert client.delete("/api/alerts").status_code == 405
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/alerts", "/api/candidates", "/api/objects/{object_id}", "/api/status"} <= set(
        paths
    )
    docs = client.get("/api").text
    assert "/api/alerts" in docs and "min_score" in docs


def test_token_is_required_when_set() -> None:
    state, _ = _state()
    with TestClient(create_app(state, token="s3cret")) as c:
        assert c.get("/").status_code == 401
        assert c.get("/api/alerts").status_code == 401
        assert c.get("/api/alerts", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/alerts", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200
        assert c.get("/static/style.css").status_code == 200
        first = c.get("/", params={"token": "s3cret"})
        assert first.status_code == 200 and "httponly" in first.headers["set-cookie"].lower()
        assert c.get("/api/status").status_code == 200  # the cookie now carries it


def test_an_alert_gone_from_kafka_is_reported_not_fatal() -> None:
    state, fetcher = _state()
    fetcher.broken = True
    with TestClient(create_app(state)) as c:
        page = c.get("/objects/ZTF20aajcdad")
        assert page.status_code == 200 and "no longer on the topic" in page.text
        url = c.get("/api/objects/ZTF20aajcdad").json()["cutouts"]["science"]
        assert c.get(url).status_code == 502


def test_window_is_bounded_by_count_and_age() -> None:
    state, _ = _state()
    rows = state.window.alerts()
    small = Window(hours=1, max_alerts=5)
    for row in rows:
        small.add_alert(row)
    assert len(small) == 5 and [r.candid for r in small.alerts()] == [r.candid for r in rows[-5:]]
    assert not small.add_alert(rows[-1]) and small.repeats == 1
    assert small.evict(now_ms=rows[-1].published_ms + 2 * 3600 * 1000) == 5 and len(small) == 0
    assert small.object_alerts(rows[-1].object_id) == []
