"""``btsbot-stream web`` in a real browser (Debian's chromium, driven by Playwright)
against the real broker fed with the demo sample's scored alerts and candidate events.

Screenshots are written to out/screenshots/ (ignored by git); the follow-up guide's
images are copies of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from follow_support import publish, publish_events
from kafka_helpers import free_port, unique
from local_kafka import LocalKafka
from PIL import Image

from scored_alerts import MODEL, demo_scored, record_of, score_of, variant

pytestmark = pytest.mark.kafka
playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"
EVIL = "<img src=x onerror=alert(1)>"
# Candidate events as the decision stage publishes them (event_version 1, abridged).
EVENTS = [
    {"event_version": 1, "objectId": oid, "policy": policy, "candid": candid, "jd": jd,
     "magpsf": mag, "fid": fid, "ra": ra, "dec": dec, "brightest_magpsf": mag,
     "history": [{"jd": jd, "candid": candid, "fid": fid, "magpsf": mag,
                  "scores": {MODEL: 0.9997}}],
     "models": [{"model": MODEL, "version": "1.0.1", "sha256": "747790d6"}],
     "service_version": "0.1.0", "decided_at": 1796109100152}
    for oid, policy, candid, jd, mag, fid, ra, dec in (
        ("ZTF20aajcdad", "bts_p1", 1127536316315015004, 2458882.0363194, 17.51, 2,
         201.6235627, 36.0086524),
        ("ZTF20aajcdad", "bts_p2", 1127536316315015004, 2458882.0363194, 17.51, 2,
         201.6235627, 36.0086524),
        ("ZTF23abjjncy", "prod_p2", 2475433850315015003, 2460229.9338542, 17.76, 1,
         46.6054099, 8.7166386),
    )
]  # fmt: skip


def _best() -> dict[str, float]:
    best: dict[str, float] = {}
    for msg in demo_scored():
        oid = record_of(msg)["objectId"]
        best[oid] = max(best.get(oid, 0.0), score_of(msg))
    return best


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.load(reply)


@pytest.fixture(scope="module")
def site(kafka: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    scored, candidates = unique("scored"), unique("candidates")
    hostile = variant(demo_scored()[3], 42, EVIL)
    publish(kafka.bootstrap, scored, [*demo_scored(), hostile])
    publish_events(kafka.bootstrap, candidates, EVENTS)
    port, metrics_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("web") / "web.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "btsbot_stream",
                "web",
                "--bootstrap-servers",
                kafka.bootstrap,
                "--topic",
                scored,
                "--candidates-topic",
                candidates,
                "--port",
                str(port),
                "--metrics-port",
                str(metrics_port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                # ready (the metrics port's /readyz) once the window is read: then it holds
                # every alert and event published before the start
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/readyz") as ready:
                    assert ready.status == 200
                status = _get_json(f"{base}/api/status")
                assert status["alerts"] == len(demo_scored()) + 1 and status["candidates"] == 3
                break
            except OSError:  # not listening yet, or 503 (HTTPError)
                pass
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
        )
    with playwright.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh user-data dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1360, "height": 900},
        )
        yield context
        context.close()


@pytest.fixture()
def page(browser: Any, site: str) -> Iterator[Any]:
    """A tab that records console errors, page errors, dialogs and any request that
    would leave the site (blocked: the page must need nothing from outside)."""
    tab = browser.new_page()
    problems: list[str] = []
    tab.on(
        "console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None
    )
    tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    tab.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))

    def only_local(route: Any) -> None:
        if route.request.url.startswith(site):
            route.continue_()
        else:
            problems.append(f"external request: {route.request.url}")
            route.abort()

    tab.route("**/*", only_local)
    yield tab
    tab.close()
    assert problems == []


def _shot(tab: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / name), full_page=True)


def _rows(tab: Any) -> list[str]:
    return tab.locator("#alerts tbody tr[data-object]").evaluate_all(
        "rows => rows.map(r => r.dataset.object)"
    )


def _loaded(tab: Any, selector: str, timeout: float = 30) -> list[int]:
    """naturalWidth of each matching image once all have loaded (0: broken). Polled
    from here: the page's policy forbids evaluating strings, as it should."""
    deadline = time.monotonic() + timeout
    while True:
        states = tab.locator(selector).evaluate_all(
            "imgs => imgs.map(i => [i.complete, i.naturalWidth])"
        )
        if states and all(done for done, _ in states):
            return [width for _, width in states]
        assert time.monotonic() < deadline, f"{selector}: {states}"
        time.sleep(0.2)


def test_list_shows_the_best_scoring_alerts_first(page: Any, site: str) -> None:
    page.goto(site + "/")
    best = _best()
    high = {oid for oid, s in best.items() if s > 0.5}
    rows = _rows(page)
    assert len(rows) == len(best) + 1  # one row per object, + the hostile copy
    assert set(rows[: len(high)]) == high
    assert all(w > 0 for w in _loaded(page, "#alerts tbody tr:nth-child(-n+8) td.thumb img"))
    assert page.locator("#latest-candidates tbody tr").count() == 3
    _shot(page, "web-list.png")


def test_filters_change_the_list(page: Any, site: str) -> None:
    page.goto(site + "/")
    page.fill("input[name=min_score]", "0.5")
    page.click("#filters button[type=submit]")
    page.wait_for_load_state()
    assert set(_rows(page)) == {oid for oid, s in _best().items() if s >= 0.5}
    page.fill("input[name=mag_max]", "18.5")
    page.select_option("select[name=band]", "g")
    page.click("#filters button[type=submit]")
    page.wait_for_load_state()
    want = {
        record_of(m)["objectId"]
        for m in demo_scored()
        if score_of(m) >= 0.5
        and record_of(m)["candidate"]["magpsf"] <= 18.5
        and record_of(m)["candidate"]["fid"] == 1
    }
    assert set(_rows(page)) == want and 0 < len(want) < len(_best())
    _shot(page, "web-list-filtered.png")


def test_object_page_shows_cutouts_and_light_curve(page: Any, site: str) -> None:
    page.goto(site + "/")
    page.click("#alerts tr[data-object=ZTF20aajcdad] td.oid a")
    page.wait_for_load_state()
    assert page.inner_text("#object-id") == "ZTF20aajcdad"
    assert _loaded(page, "img.cutout") == [63, 63, 63]  # one screen pixel block per pixel
    (width,) = _loaded(page, "#lightcurve")
    assert width > 500
    png = page.request.get(site + page.get_attribute("#lightcurve", "src")).body()
    assert np.asarray(Image.open(BytesIO(png)).convert("L")).std() > 10  # something plotted
    links = page.locator("#links a[target=_blank]").evaluate_all("a => a.map(x => x.textContent)")
    assert {"ALeRCE", "Fink", "Lasair", "TNS"} <= set(links)
    assert page.locator("#scores tbody tr").first.inner_text().startswith(MODEL)
    assert page.locator("#object-alerts tbody tr").count() == 2
    assert "bts_p2" in page.inner_text("#decisions")
    _shot(page, "web-object.png")


def test_candidates_page_and_its_filter(page: Any, site: str) -> None:
    page.goto(site + "/candidates")
    assert page.locator("#candidates tbody tr").count() == 3
    page.fill("input[name=policy]", "bts_p2")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#candidates tbody tr").count() == 1


def test_hostile_alert_text_stays_text(page: Any, site: str) -> None:
    page.goto(site + "/?object_id=%3Cimg")
    assert _rows(page) == [EVIL]
    page.click("#alerts td.oid a")
    page.wait_for_load_state()
    assert page.inner_text("#object-id") == EVIL  # shown, never run (no dialog: see fixture)
