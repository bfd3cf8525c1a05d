"""Benchmarks of the scanning page (``btsbot-stream web``); results go in docs/benchmarks.md.

1. window memory: bytes held per 100k scored alerts (tracemalloc: the rows, their
   indexes and scores; the whole process's RSS growth as well).
2. list page: time to render ``/`` (HTML, through FastAPI in-process) with a window of
   500 alerts (50 rows a page, and all 500 on one page), and with 100k alerts (the
   filter + sort + first page cost).
3. object page: ``/objects/<id>`` HTML, its three cutout PNGs and the light-curve PNG,
   first view (decode the alert, draw) and again (cached). The alert comes from memory
   here; with ``--bootstrap`` the read-by-offset from a real broker is timed apart (4).
4. fetch: ``MessageFetcher.get`` of a scored alert by offset from the broker at
   ``--bootstrap`` (the demo sample produced into a new topic first).
5. a start (with ``--bootstrap``): ``--start-alerts`` scored messages (the demo sample
   over and over) in a 4-partition topic, then a page's window feed from its start
   until it has caught up (``/readyz`` would answer 200): wall and CPU time (this
   process's: the broker's is not counted), bytes read, the peak RSS growth. What a page
   start costs is this, scaled to the window's count (``window_alerts``, 100,000 by default).

The alerts are the demo sample scored by the shipped production model through the
service's own scoring and publishing code, copied under new candids and objectIds.

Usage: python deploy/bench/web_bench.py [--alerts 100000] [--repeat 20]
       [--bootstrap HOST:PORT [--start-alerts 5000]] [--json F]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import statistics
import time
import tracemalloc
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from fastapi.testclient import TestClient

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.sources import expand, read_items
from btsbot_stream.config import EngineSettings, KafkaSettings
from btsbot_stream.follow.alert_view import ROW, AlertReader
from btsbot_stream.scoring import load_scorer, prepare_message
from btsbot_stream.stream.dead_letters import SourcePosition
from btsbot_stream.stream.publish import OutputMessage, Publisher
from btsbot_stream.web.app import create_app
from btsbot_stream.web.feed import Position, WindowFeed, alert_row
from btsbot_stream.web.fetch import MessageFetcher
from btsbot_stream.web.objects import ObjectPages
from btsbot_stream.web.views import WebState
from btsbot_stream.web.window import AlertRow, Window

REPO = Path(__file__).resolve().parents[2]


def scored_demo() -> list[OutputMessage]:
    engine = EngineSettings(models_dir=REPO / "models", device="cpu", warmup=False)
    scorer = load_scorer(engine)
    publisher = Publisher(
        KafkaSettings(input_topics=("in",), output_topic="scored"),
        [m.card for m in scorer.models],
    )
    decoder, out = AlertDecoder(), []
    for offset, item in enumerate(read_items(expand([REPO / "deploy" / "demo" / "alerts"]))):
        outcomes = scorer.score([prepare_message(decoder, item.data)])[0]
        messages = publisher.outputs(item.data, SourcePosition("in", 0, offset), outcomes)
        out += [m for m in messages if m.topic == "scored"]
    return out


class MemoryFetcher:
    def __init__(self) -> None:
        self.values: dict[tuple[str, int, int], bytes] = {}

    def get(self, topic: str, partition: int, offset: int) -> bytes:
        return self.values[(topic, partition, offset)]


def base_rows(messages: list[OutputMessage], fetcher: MemoryFetcher) -> list[AlertRow]:
    reader, now, rows = AlertReader(ROW), int(time.time() * 1000), []
    for offset, msg in enumerate(messages):
        fetcher.values[("scored", 0, offset)] = msg.value
        row, _ = alert_row(
            Position("scored", 0, offset, now), msg.key, msg.headers, reader.read(msg.value)
        )
        rows.append(row)
    return rows


def copies(rows: list[AlertRow], count: int) -> list[AlertRow]:
    """``count`` rows: the demo rows under new candids, two alerts per objectId."""
    out = []
    for i in range(count):
        row = rows[i % len(rows)]
        out.append(
            replace(
                row,
                object_id=f"ZTF26b{i // 2:07d}",
                candid=3_000_000_000_000_000_000 + i,
                scores=dict(row.scores),
            )
        )
    return out


def window_memory(rows: list[AlertRow], count: int) -> dict[str, float]:
    gc.collect()
    rss0 = _rss()
    tracemalloc.start()
    window = Window(hours=48, max_alerts=count)
    window.extend(copies(rows, count))
    gc.collect()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = _rss() - rss0
    assert len(window) == count
    return {
        "alerts": count,
        "traced_mib": traced / 2**20,
        "bytes_per_alert": traced / count,
        "mib_per_100k": traced / count * 100_000 / 2**20,
        "rss_growth_mib": rss / 2**20,
    }


def _rss() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def timed(fn: Any, repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": statistics.median(times), "min_ms": min(times)}


def client_for(rows: list[AlertRow], fetcher: MemoryFetcher, count: int) -> TestClient:
    window = Window(hours=48, max_alerts=count)
    window.extend(copies(rows, count) if count > len(rows) else rows[:count])
    return TestClient(create_app(WebState(window, ObjectPages(window, fetcher))))


def fetch_times(bootstrap: str, messages: list[OutputMessage], repeat: int) -> dict[str, float]:
    """Read scored alerts back by offset, each on a fresh assignment, as pages do."""
    topic = f"web-bench-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap})
    for msg in messages:
        producer.produce(topic, msg.value, msg.key, partition=0)
    producer.flush(30)
    fetcher = MessageFetcher(bootstrap, {})
    try:
        offsets = [i % len(messages) for i in range(7, 7 + 11 * repeat, 11)]
        index = iter(offsets)
        return timed(lambda: fetcher.get(topic, 0, next(index)), repeat)
    finally:
        fetcher.close()
        AdminClient({"bootstrap.servers": bootstrap}).delete_topics([topic])


def start_cost(bootstrap: str, messages: list[OutputMessage], count: int) -> dict[str, float]:
    """A window feed from start to caught up over ``count`` scored messages."""
    topic = f"web-bench-start-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=4)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
    for i in range(count):
        msg = messages[i % len(messages)]
        producer.produce(topic, msg.value, msg.key, headers=msg.headers, partition=i % 4)
        producer.poll(0)
    producer.flush(120)
    window = Window(hours=48, max_alerts=count)
    feed = WindowFeed(window, bootstrap, {}, topic, None)
    gc.collect()
    rss0, cpu0, start = _rss(), time.process_time(), time.perf_counter()
    peak = rss0
    feed.start()
    try:
        while not feed.catch_up.done:
            time.sleep(0.05)
            peak = max(peak, _rss())
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    finally:
        feed.stop()
        admin.delete_topics([topic])
    read = sum(len(messages[i % len(messages)].value) for i in range(count))
    assert feed.status.read == count, (feed.status.read, count)
    return {
        "messages": count,
        "mean_message_kb": read / count / 1000,
        "bytes_read_mb": read / 1e6,
        "wall_s": wall,
        "cpu_s": cpu,
        "messages_per_s": count / wall,
        "cpu_us_per_message": cpu / count * 1e6,
        "peak_rss_growth_mib": (peak - rss0) / 2**20,  # window + librdkafka's queue
        "per_100k": {
            "wall_s": wall / count * 1e5,
            "cpu_s": cpu / count * 1e5,
            "gb": read / count * 1e5 / 1e9,
        },
    }


def get_ok(client: TestClient, url: str) -> None:
    reply = client.get(url)
    assert reply.status_code == 200, (url, reply.status_code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--bootstrap", help="a broker to time reads by offset against")
    parser.add_argument(
        "--start-alerts", type=int, default=5000, help="messages a timed start reads (--bootstrap)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    fetcher = MemoryFetcher()
    rows = base_rows(scored_demo(), fetcher)
    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "memory": window_memory(rows, args.alerts),
    }
    small = client_for(copies(rows, 500), fetcher, 500)
    big = client_for(rows, fetcher, args.alerts)
    results["list"] = {
        "500 alerts, 50 rows": timed(lambda: get_ok(small, "/"), args.repeat),
        "500 alerts, all 500 rows": timed(
            lambda: get_ok(small, "/?per_page=500&per_object=false"), args.repeat
        ),
        f"{args.alerts} alerts, 50 rows": timed(lambda: get_ok(big, "/"), max(3, args.repeat // 4)),
        f"{args.alerts} alerts, JSON 50": timed(
            lambda: get_ok(big, "/api/alerts"), max(3, args.repeat // 4)
        ),
    }
    object_id = "ZTF20aajcdad"
    demo = client_for(rows, fetcher, len(rows))
    doc = demo.get(f"/api/objects/{object_id}").json()  # warms imports; the caches next
    images = [*doc["cutouts"].values(), doc["light_curve_png"]]

    def first_view() -> None:
        fresh = client_for(rows, fetcher, len(rows))
        get_ok(fresh, f"/objects/{object_id}")
        for url in images:
            get_ok(fresh, url)

    results["object"] = {
        "first view (page + 3 cutouts + light curve)": timed(first_view, max(3, args.repeat // 4)),
        "page again (cached alert)": timed(
            lambda: get_ok(demo, f"/objects/{object_id}"), args.repeat
        ),
        "cutout PNG again (cached)": timed(lambda: get_ok(demo, images[0]), args.repeat),
    }
    if args.bootstrap:
        results["fetch"] = fetch_times(args.bootstrap, scored_demo(), args.repeat)
        results["start"] = start_cost(args.bootstrap, scored_demo(), args.start_alerts)
    else:
        results["note"] = "object pages read the alert from memory: add one Kafka fetch"
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
