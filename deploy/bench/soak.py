"""Night-scale soak through a real local Apache Kafka (outside CI; figures go in
docs/benchmarks.md).

N alerts made from real ones under new candids (the demo sample, or the shared corpus
with --shared), a hostile message every --hostile-every, produced at --rate while one
service instance (at-least-once) scores them; the instance is SIGKILLed --kills times
at random moments (seeded) and restarted, and the broker is stopped and restarted once.
At the end: every candid published (0 missing), every hostile message dead-lettered,
counts reconciled, and the service's memory (RSS, sampled every 2 s) before and after
warm-up.

Usage: python deploy/bench/soak.py [--alerts 100000] [--shared ../shared] [--json F]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from btsbot_stream.alerts.sources import SourceItem
from btsbot_stream.stream.replay import replay
from btsbot_stream.stream.summary import read_to_end

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent / "kafka"))
from good_alerts import good_alerts  # noqa: E402
from local_kafka import LocalKafka, _free_port  # noqa: E402
from proc_tree import tree_rss_kib  # noqa: E402


def hostile(i: int, good: bytes, schema: Any, rng: random.Random) -> bytes:
    kind = i % 4
    if kind == 0:
        return good[: rng.randrange(8, len(good) - 20)]
    if kind == 1:
        return b"\x89PNG\r\n" + rng.randbytes(300)
    if kind == 2:
        buf = io.BytesIO()
        fastavro.writer(buf, schema, [])
        return buf.getvalue()
    return b"\x00" + (900_000 + i).to_bytes(4, "big") + rng.randbytes(64)


def packets(
    base: list[tuple[Any, dict[str, Any]]], count: int, every: int, seed: int
) -> Iterator[tuple[bytes, int | None]]:
    """(message, candid or None for a hostile one)."""
    rng = random.Random(seed)
    for i in range(count):
        schema, record = base[i % len(base)]
        candid = record["candid"] % 10**15 + (i // len(base) + 1) * 10**15
        buf = io.BytesIO()
        fastavro.writer(buf, schema, [dict(record, candid=candid)])
        yield buf.getvalue(), candid
        if every and i % every == every - 1:
            yield hostile(i // every, buf.getvalue(), schema, rng), None


class Instance:
    def __init__(self, config: Path, log: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "btsbot_stream", "run", "--config", str(config)],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.started = time.monotonic()
        self.samples: list[tuple[float, int]] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--hostile-every", type=int, default=300)
    parser.add_argument("--rate", type=float, default=200.0, help="alerts/s produced")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds, at most")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--shared", type=Path, help="use ../shared's real alerts")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    root = args.shared / "data/ztf/alerts" if args.shared else REPO / "deploy/demo/alerts"
    base = good_alerts(root)
    tmp = Path(tempfile.mkdtemp(prefix="btsbot-soak-"))
    rng = random.Random(args.seed)
    expected: set[int] = set()
    hostile_sent: list[bytes] = []
    kafka = LocalKafka(port=_free_port(), data_dir=tmp / "kafka").start(timeout=180)
    bootstrap = kafka.bootstrap
    topic, out, dlq = (f"{n}-{uuid.uuid4().hex[:6]}" for n in ("soak_in", "soak_out", "soak_dlq"))
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, args.partitions)])[topic].result(30)
    metrics_port = _free_port()
    config = tmp / "soak.toml"
    config.write_text(
        f'[kafka]\nbootstrap_servers = "{bootstrap}"\ngroup_id = "soak"\n'
        f'input_topics = ["{topic}"]\noutput_topic = "{out}"\ndead_letter_topic = "{dlq}"\n'
        f'[kafka.properties]\n"session.timeout.ms" = "6000"\n'
        f'[engine]\nmodels_dir = "{REPO / "models"}"\ndevice = "cpu"\n'
        f"[observability]\nmetrics_port = {metrics_port}\n"
    )

    def produce() -> None:
        def items() -> Iterator[SourceItem]:
            for message, candid in packets(base, args.alerts, args.hostile_every, args.seed):
                if candid is None:
                    hostile_sent.append(message)
                else:
                    expected.add(candid)
                yield SourceItem("soak", message)

        while True:
            try:
                replay(items(), {"bootstrap.servers": bootstrap}, topic, args.rate)
                return
            except Exception as exc:  # counted as missing below, if anything was lost
                print(f"producer: {exc}", file=sys.stderr)
                return

    # Kills and the broker restart happen at random points of the output's progress, so
    # they fall mid-stream however fast this machine is.
    kill_at = sorted(rng.uniform(0.1, 0.5) * args.alerts for _ in range(args.kills))
    restart_at = 0.6 * args.alerts
    started = time.monotonic()
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    instances = [Instance(config, tmp / "service.log")]
    broker_restarted = False
    events: list[tuple[int, int, str]] = []
    seen: Counter[int] = Counter()
    checked = 0.0
    while time.monotonic() - started < args.timeout:
        now = time.monotonic() - started
        current = instances[-1]
        rss = tree_rss_kib(current.proc.pid)
        if rss is not None:
            current.samples.append((now, rss))
        done = outputs_written(bootstrap, out)
        if kill_at and done >= kill_at[0]:
            kill_at.pop(0)
            current.proc.send_signal(signal.SIGKILL)
            current.proc.wait(30)
            events.append((round(now), done, "SIGKILL"))
            instances.append(Instance(config, tmp / "service.log"))
        elif not broker_restarted and done >= restart_at:
            kafka.stop()
            time.sleep(5)
            kafka.start(timeout=180)
            broker_restarted = True
            events.append((round(now), done, "broker restarted"))
        elif current.proc.poll() is not None:
            events.append(
                (round(now), done, f"service exited on its own ({current.proc.returncode})")
            )
            instances.append(Instance(config, tmp / "service.log"))
        if not producer.is_alive() and done >= len(expected) and time.monotonic() - checked > 60:
            checked = time.monotonic()
            seen = Counter(candids_in(bootstrap, out))
            if expected <= set(seen):
                break
        time.sleep(2)
    elapsed = time.monotonic() - started
    dead = read_to_end({"bootstrap.servers": bootstrap}, dlq, 300)
    instances[-1].proc.send_signal(signal.SIGTERM)
    exit_code = instances[-1].proc.wait(120)
    kafka.stop()
    dead_values = Counter(m.value() or b"" for m in dead)
    last = instances[-1].samples
    warm = [r for t, r in last if t - last[0][0] > 60] if last else []
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="minutes"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_end": os.getloadavg(),  # 1, 5 and 15 minutes: was the machine shared?
        "command": " ".join(sys.argv),
        "alerts": len(expected),
        "hostile": len(hostile_sent),
        "events": events,
        "missing": len(expected - set(seen)),
        "duplicates": sum(n - 1 for n in seen.values() if n > 1),
        "hostile_dead_lettered": sum(1 for h in set(hostile_sent) if dead_values[h] >= 1),
        "dead_letters": len(dead),
        "good_alerts_dead_lettered": sum(
            n for v, n in dead_values.items() if v not in set(hostile_sent)
        ),
        "elapsed_s": round(elapsed),
        "alerts_per_s": round(len(expected) / elapsed, 1),
        "final_exit_code": exit_code,
        "rss_mib_last_instance": {
            "after_60s": round(warm[0] / 1024) if warm else None,
            "max_after_60s": round(max(warm) / 1024) if warm else None,
            "at_end": round(warm[-1] / 1024) if warm else None,
            "samples": len(last),
        },
        "rss_mib_per_instance_max": [
            round(max(r for _, r in i.samples) / 1024) for i in instances if i.samples
        ],
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    print(f"log: {tmp / 'service.log'}", file=sys.stderr)


def _watermarks(consumer: Consumer, topic: str) -> dict[int, tuple[int, int]]:
    meta = consumer.list_topics(topic, timeout=30).topics.get(topic)
    if meta is None or meta.error is not None:
        return {}
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        for p in meta.partitions
    }


def outputs_written(bootstrap: str, topic: str) -> int:
    """Messages in ``topic`` so far (a progress signal; 0 while the broker is away)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex})
    try:
        return sum(high - low for low, high in _watermarks(consumer, topic).values())
    except KafkaException:
        return 0
    finally:
        consumer.close()


def candids_in(bootstrap: str, topic: str) -> Iterator[int]:
    """The ztf.candid header of every committed message, reading headers only."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": uuid.uuid4().hex,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        ends = {p: high for p, (low, high) in _watermarks(consumer, topic).items() if high > low}
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        positions = dict.fromkeys(ends, 0)
        while any(positions[p] < ends[p] for p in ends):
            for msg in consumer.consume(1000, 1.0):
                if msg.error():
                    continue
                positions[msg.partition() or 0] = (msg.offset() or 0) + 1
                yield int(dict(msg.headers() or [])["ztf.candid"])
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
