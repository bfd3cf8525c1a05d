"""``btsbot-stream watch`` against the real broker: filters, repeats, --save, resume
after SIGKILL, start by time, candidate events, clear errors."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pytest
from astropy.io import fits
from click.testing import CliRunner
from follow_support import publish, publish_events
from kafka_helpers import committed, end_offsets, free_port, unique
from local_kafka import LocalKafka

from btsbot_stream.cli import main
from btsbot_stream.follow import kafka as follow_kafka
from btsbot_stream.follow.dedup import RecentKeys
from btsbot_stream.follow.filters import Cone, Filters
from btsbot_stream.follow.items import FollowItem
from btsbot_stream.follow.watch import Watcher, WatchPlan
from scored_alerts import MODEL, candid_of, demo_scored, record_of, score_of, variant

pytestmark = pytest.mark.kafka
ALL = {candid_of(m) for m in demo_scored()}


def _watch(
    bootstrap: str, topics: dict[str, str], filters: Filters | None = None, **plan: object
) -> tuple[list[FollowItem], Watcher]:
    """Run a watcher in-process until 3 s without messages; what passed, and it."""
    seen: list[FollowItem] = []
    settings = WatchPlan(bootstrap, {}, unique("watch"), topics, "earliest", **plan)  # type: ignore[arg-type]
    watcher = Watcher(settings, filters or Filters(), RecentKeys(10_000), seen.append)
    try:
        watcher.start()
        watcher.run(lambda: False, exit_when_idle=3)
    finally:
        watcher.close()
    return seen, watcher


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "btsbot_stream", "watch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


def test_filters_on_scores_magnitude_band_and_cone(kafka: LocalKafka) -> None:
    topic = unique("scored")
    publish(kafka.bootstrap, topic, demo_scored())
    records = {candid_of(m): (record_of(m), score_of(m)) for m in demo_scored()}

    seen, watcher = _watch(kafka.bootstrap, {topic: "alert"}, Filters(min_scores={MODEL: 0.5}))
    assert {i.candid for i in seen} == {c for c, (_, s) in records.items() if s >= 0.5}
    assert watcher.counts.filtered == len(records) - len(seen)  # dropped on the header

    seen, _ = _watch(kafka.bootstrap, {topic: "alert"}, Filters(mag_max=18.5, bands=frozenset({1})))
    assert {i.candid for i in seen} == {
        c
        for c, (r, _) in records.items()
        if r["candidate"]["magpsf"] <= 18.5 and r["candidate"]["fid"] == 1
    }

    target = record_of(demo_scored()[5])["candidate"]
    cone = Cone(target["ra"], target["dec"] + 2 / 3600, 3.0)  # 2" away, 3" radius
    seen, _ = _watch(kafka.bootstrap, {topic: "alert"}, Filters(cone=cone))
    assert {i.object_id for i in seen} == {record_of(demo_scored()[5])["objectId"]}


def test_repeats_after_a_republish_are_shown_once(kafka: LocalKafka) -> None:
    topic = unique("scored")
    publish(kafka.bootstrap, topic, demo_scored())
    publish(kafka.bootstrap, topic, demo_scored(), partitions=None)  # a restart re-publishes
    seen, watcher = _watch(kafka.bootstrap, {topic: "alert"})
    assert sorted(i.candid for i in seen) == sorted(ALL)
    assert watcher.counts.repeats == len(ALL) and watcher.counts.read == 2 * len(ALL)


def test_since_starts_at_a_publication_time(kafka: LocalKafka) -> None:
    topic = unique("scored")
    early, late = demo_scored()[:10], demo_scored()[10:]
    publish(kafka.bootstrap, topic, early)
    time.sleep(1.5)
    since = datetime.now(UTC)
    time.sleep(0.5)
    publish(kafka.bootstrap, topic, late, partitions=None)
    seen, _ = _watch(kafka.bootstrap, {topic: "alert"}, since=since)
    assert {i.candid for i in seen} == {candid_of(m) for m in late}


def test_candidate_events_by_policy(kafka: LocalKafka) -> None:
    topic = unique("candidates")
    events = [
        {"objectId": "ZTF20aajcdad", "policy": p, "candid": 1, "magpsf": 17.5}
        for p in ("bts_p1", "bts_p2", "prod_p1")
    ]
    publish_events(kafka.bootstrap, topic, events)
    publish_events(kafka.bootstrap, topic, [{"objectId": "ZTF1", "no": "policy"}], create=False)
    seen, watcher = _watch(
        kafka.bootstrap, {topic: "candidate"}, Filters(policies=frozenset({"bts_p2"}))
    )
    assert [(i.object_id, i.policy) for i in seen] == [("ZTF20aajcdad", "bts_p2")]
    assert watcher.counts.undecodable == 1 and watcher.counts.filtered == 2


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _csv_candids(path: Path) -> list[int]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return [int(r["candid"]) for r in csv.DictReader(fh) if r.get("candid")]


def test_cli_saves_commits_after_saving_and_resumes_after_sigkill(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    """120 distinct alerts; the watcher is killed mid-way and restarted: every alert is
    saved exactly once (files and CSV), and the group's commits reach the end."""
    topic, group = unique("scored"), unique("watch")
    messages = [variant(demo_scored()[i % 29], 10**12 + i) for i in range(120)]
    publish(kafka.bootstrap, topic, messages)
    save = tmp_path / "saved"
    args = [
        "--bootstrap-servers",
        kafka.bootstrap,
        "--topic",
        topic,
        "--group-id",
        group,
        "--start",
        "earliest",
        "--save",
        str(save),
        "--output",
        "json",
    ]
    first = _cli(*args)
    _wait_for(lambda: len(_csv_candids(save / "scores.csv")) >= 30, 180, "nothing saved")
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    killed_at = len(_csv_candids(save / "scores.csv"))
    second = _cli(*args, "--exit-when-idle", "4")
    out, err = second.communicate(timeout=200)
    assert second.returncode == 0, err
    candids = _csv_candids(save / "scores.csv")
    assert sorted(candids) == sorted(10**12 + i for i in range(120))  # none lost, none twice
    assert killed_at < 120  # the kill did interrupt the run
    assert len(out.splitlines()) == 120 - killed_at  # the restart showed only the rest
    assert committed(kafka.bootstrap, group, topic, 2) == end_offsets(kafka.bootstrap, topic, 2)
    one = messages[7]
    folder = save / record_of(one)["objectId"]
    with (folder / f"{10**12 + 7}.avro").open("rb") as fh:
        (alert,) = fastavro.reader(fh)
    assert alert["candid"] == 10**12 + 7 and alert["btsbot"]["scores"][0]["model"] == MODEL
    with fits.open(folder / f"{10**12 + 7}_science.fits.gz") as hdul:
        assert hdul[0].data.shape[0] <= 63
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["kind"] for r in rows} == {"alert"} and all(MODEL in r["scores"] for r in rows)


def test_clear_errors_for_unreachable_broker_and_unknown_topic(
    kafka: LocalKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow_kafka, "METADATA_TIMEOUT_S", 3.0)
    runner = CliRunner()
    dead = f"127.0.0.1:{free_port()}"
    result = runner.invoke(main, ["watch", "--bootstrap-servers", dead, "--output", "json"])
    assert result.exit_code == 1 and f"cannot reach a Kafka broker at {dead}" in result.output
    result = runner.invoke(
        main,
        [
            "watch",
            "--bootstrap-servers",
            kafka.bootstrap,
            "--topic",
            unique("nope"),
            "--output",
            "json",
        ],
    )
    assert result.exit_code == 1 and "does not exist" in result.output
