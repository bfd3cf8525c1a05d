"""The scanning page's operations side without a broker: where a start reads from,
when catching up ends, requests timed under their route template (never the raw path),
and the health endpoints when the feed has died or no broker answers. Against a real
broker: tests/stream/test_web_ops.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from tests.probes import free_port, http_get, until

from btsbot_stream.follow import kafka as follow_kafka
from btsbot_stream.stream.health import HealthServer
from btsbot_stream.web.app import create_app
from btsbot_stream.web.feed import WindowFeed
from btsbot_stream.web.objects import ObjectPages
from btsbot_stream.web.readiness import CatchUp
from btsbot_stream.web.start import start_offsets
from btsbot_stream.web.views import WebState
from btsbot_stream.web.window import Window

SECONDS = "btsbot_web_request_seconds"


# --- where a start reads from ---------------------------------------------------------------


def test_a_start_reads_the_hours_when_they_fit_the_budget() -> None:
    # (first offset within the hours, low, high) per partition; 3 + 0 + 4 = 7 <= 10
    assert start_offsets([(7, 0, 10), (-1, 0, 5), (96, 90, 100)], 10) == [7, 5, 96]
    # a first offset below the low watermark (deleted since) starts at the low one
    assert start_offsets([(2, 5, 8)], 10) == [5]


def test_the_budget_is_for_all_partitions_together() -> None:
    # 40 + 60 = 100 messages within the hours, 10 allowed: 4 and 6 of the newest
    assert start_offsets([(0, 0, 40), (140, 100, 200)], 10) == [36, 194]
    # a partition with nothing recent gets nothing; shares round down (never over)
    starts = start_offsets([(0, 0, 3), (0, 0, 3), (0, 0, 3), (-1, 0, 9)], 4)
    assert starts == [2, 2, 2, 9]
    assert sum(h - s for s, h in zip(starts, (3, 3, 3, 9), strict=True)) <= 4


# --- when catching up ends --------------------------------------------------------------------


def test_catching_up_ends_at_each_partitions_first_end_once() -> None:
    catch_up = CatchUp()
    catch_up.expect("s", 0, 0, 10)
    catch_up.expect("s", 1, 5, 5)  # nothing to read
    catch_up.expect("c", 0, 3, 4)
    assert not catch_up.done  # not armed: the first assignment may still grow
    catch_up.arm()
    catch_up.expect("late", 0, 0, 100)  # after arming: not waited for
    assert catch_up.remaining() == (11, 2)
    catch_up.read("s", 0, 3)
    catch_up.read("c", 0, 3)
    assert catch_up.remaining() == (6, 1) and not catch_up.done
    catch_up.read("s", 0, 8)  # offset 9 is a transaction marker: never delivered...
    assert not catch_up.done
    catch_up.at_end("s", 0)  # ...the end of the partition is reported instead
    assert catch_up.done
    catch_up.expect("s", 2, 0, 50)
    assert catch_up.done  # caught up once: later traffic is lag, not unreadiness


# --- requests, by route template ---------------------------------------------------------------


def _count(route: str) -> float:
    return REGISTRY.get_sample_value(f"{SECONDS}_count", {"route": route}) or 0.0


def _responses(status: str) -> float:
    return REGISTRY.get_sample_value("btsbot_web_responses_total", {"status": status}) or 0.0


@pytest.fixture()
def client() -> Iterator[TestClient]:
    window = Window(hours=48, max_alerts=100)
    with TestClient(create_app(WebState(window, ObjectPages(window, None)), token="t0k")) as c:
        yield c


def test_requests_are_timed_by_route_template(client: TestClient) -> None:
    routes = {
        "/api/objects/ZTF26aaaaaaa?token=t0k": "/api/objects/{object_id}",
        "/objects/ZTF26aaaaaab/lightcurve.png": "/objects/{object_id}/lightcurve.png",
        "/api/alerts?min_score=0.5": "/api/alerts",
        "/static/style.css": "/static",
        "/no/such/page": "unmatched",
    }
    before = {route: _count(route) for route in routes.values()}
    status_before = {s: _responses(s) for s in ("2xx", "4xx")}
    for url in routes:
        client.get(url)
    for route in routes.values():
        assert _count(route) == before[route] + 1, route
    # 3 pages answered 404 (two unknown objects, no such page), two 200
    assert _responses("4xx") == status_before["4xx"] + 3
    assert _responses("2xx") == status_before["2xx"] + 2
    assert "ZTF26aaaaaa" not in _exposition()  # no object, no path, in any label


def test_refused_requests_have_their_own_label() -> None:
    window = Window(hours=48, max_alerts=100)
    app = create_app(WebState(window, ObjectPages(window, None)), token="t0k")
    before = _count("refused")
    with TestClient(app) as fresh:  # no cookie yet
        assert fresh.get("/api/alerts").status_code == 401
        assert fresh.get("/healthz").status_code == 200  # open, and timed as itself
    assert _count("refused") == before + 1


def _exposition() -> str:
    from prometheus_client import generate_latest

    return generate_latest(REGISTRY).decode()


def test_route_labels_are_a_fixed_set(client: TestClient) -> None:
    for i in range(5):
        client.get(f"/objects/ZTF26b{i:07d}?token=t0k")
        client.get(f"/nothing/{i}")
    routes = {
        line.split('route="', 1)[1].split('"', 1)[0]
        for line in _exposition().splitlines()
        if line.startswith(f"{SECONDS}_count{{")
    }
    assert "/objects/{object_id}" in routes and "unmatched" in routes
    assert all(r.startswith("/") or r in ("refused", "unmatched") for r in routes)
    assert not any("ZTF26b" in r or "/nothing/" in r for r in routes)
    # created at start (at 0), so a rate() exists before the first request
    assert "/api/candidates" in routes and "/objects/{object_id}/lightcurve.png" in routes


# --- /healthz and /readyz without a working feed ----------------------------------------------


def test_a_dead_feed_fails_healthz_on_both_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    window = Window(hours=48, max_alerts=100)
    feed = WindowFeed(window, f"127.0.0.1:{free_port()}", {}, "scored", None)

    def broken() -> None:
        raise RuntimeError("a bug in the feed")

    monkeypatch.setattr(feed, "_assign_new", broken)
    app = create_app(WebState(window, ObjectPages(window, None), feed))
    with HealthServer(feed.health, "127.0.0.1", 0) as server, TestClient(app) as client:
        base = f"http://127.0.0.1:{server.port}"
        until(lambda: not feed.health.alive, 30, "the feed's thread did not end")
        reply = client.get("/healthz")
        assert reply.status_code == 503
        assert "the window feed stopped: RuntimeError: a bug in the feed" in reply.text
        assert http_get(f"{base}/healthz")[0] == 503


def test_no_broker_is_not_ready_with_the_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow_kafka, "METADATA_TIMEOUT_S", 1.0)
    window = Window(hours=48, max_alerts=100)
    feed = WindowFeed(window, f"127.0.0.1:{free_port()}", {}, "scored", None)
    with HealthServer(feed.health, "127.0.0.1", 0) as server:
        base = f"http://127.0.0.1:{server.port}"
        code, body = http_get(f"{base}/readyz")
        assert code == 503 and "not ready: starting: the window feed has not started" in body
        feed.start()
        try:
            until(
                lambda: "brokers_unreachable" in http_get(f"{base}/readyz")[1], 60, "no cause given"
            )
            code, body = http_get(f"{base}/readyz")
            assert code == 503
            assert "not ready: brokers_unreachable: no broker connection up (window feed)" in body
            assert "not ready: starting: no partition of 'scored' assigned yet" in body
            assert http_get(f"{base}/healthz")[0] == 200  # alive: waiting is not a fault
            metrics = http_get(f"{base}/metrics")[1]
            assert 'btsbot_not_ready{cause="brokers_unreachable"} 1.0' in metrics
            errors = REGISTRY.get_sample_value(
                "btsbot_web_feed_errors_total", {"kind": "unreachable"}
            )
            assert errors and errors > 0
        finally:
            feed.stop()
    assert feed.status.problem  # the last problem is kept for /api/status
