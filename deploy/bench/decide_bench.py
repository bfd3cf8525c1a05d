"""Decision-stage benchmarks through a real local Apache Kafka (results go in
docs/benchmarks.md).

1. throughput: N scored alerts of N/k objects (k alerts each, scores drawn so that
   policies fire) already in the scored topic; ``btsbot-stream decide`` started;
   alerts/s and events/s from its first assignment to the last committed offset;
2. restore: a second instance on an empty state folder rebuilds every object from the
   changelog ("state restored in X s"), scaled to 100k objects;
3. state size: bytes of the stored value per object (JSON, from the changelog) and of
   the restored RocksDB folder per object;
4. in-process: the rate of decoding a scored message and of one decision step.

The scored messages are real ZTF alerts re-issued under new objectIds/candids with the
stamps and history removed (the stage decodes neither), enriched by stream.enrich.

Usage: python deploy/bench/decide_bench.py [--objects 100000] [--alerts-per-object 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fastavro
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.decisions.decide import observe
from btsbot_stream.decisions.policies import BUILTIN_POLICIES
from btsbot_stream.decisions.state import ObjectState
from btsbot_stream.engine.cards import find_card
from btsbot_stream.stream.decide.codec import ScoredDeserializer
from btsbot_stream.stream.enrich import enriched_message, score_headers, scores_field
from btsbot_stream.stream.summary import read_to_end

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent / "kafka"))
from local_kafka import LocalKafka, _free_port  # noqa: E402

MODEL = "btsbot-v1.0.1"
PARTITIONS = 4


def scored_messages(objects: int, per_object: int) -> list[tuple[str, bytes, list]]:
    path = next(
        p for p in sorted((REPO / "deploy/demo/alerts").rglob("*.avro")) if "odd" not in p.parts
    )
    with path.open("rb") as fh:
        reader = fastavro.reader(fh)
        schema, (base,) = reader.writer_schema, list(reader)
    card = find_card(MODEL, REPO / "models")
    decoder, rng, out = AlertDecoder(), random.Random(3), []
    for k in range(objects):
        for i in range(per_object):
            record = dict(base, candidate=dict(base["candidate"]), prv_candidates=None)
            for stamp in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
                record[stamp] = None
            candid = 8_000_000_000_000_000 + k * 100 + i
            record["objectId"] = f"ZTF98bench{k:07d}"
            record["candid"] = record["candidate"]["candid"] = candid
            record["candidate"]["jd"] = 2460000.5 + i * 0.9
            record["candidate"]["magpsf"] = rng.choice([17.5, 18.4, 18.9, 19.3])
            score = rng.choice([0.05, 0.3, 0.7, 0.9])
            buf = io.BytesIO()
            fastavro.writer(buf, schema, [record])
            (decoded,) = decoder.decode(buf.getvalue())
            field = scores_field([card], {MODEL: score}, 1_700_000_000_000)
            value = enriched_message(decoded.schema, decoded.datum, field)
            out.append((record["objectId"], value, score_headers(candid, {MODEL: score})))
    return out


def in_process(messages: list[tuple[str, bytes, list]]) -> dict[str, float]:
    deserialize, sample = ScoredDeserializer(), messages[:5000]
    started = time.perf_counter()
    decoded = [deserialize(value)[0] for _, value, _ in sample]
    decode_s = time.perf_counter() - started
    states: dict[str, dict] = {}
    started = time.perf_counter()
    for message in decoded:
        stored = states.get(message.object_id)
        state = ObjectState.from_json(stored) if stored else None
        seen = observe(state, message.alert, BUILTIN_POLICIES, 60)
        states[message.object_id] = json.loads(json.dumps(seen.state.to_json()))
    decide_s = time.perf_counter() - started
    return {
        "decode_per_s": len(sample) / decode_s,
        "decide_per_s": len(sample) / decide_s,
        "message_bytes": sum(len(v) for _, v, _ in sample) / len(sample),
    }


def write_config(path: Path, bootstrap: str, topic: str, state: Path) -> Path:
    path.write_text(
        f'[kafka]\nbootstrap_servers = "{bootstrap}"\ninput_topics = ["unused"]\n'
        f'output_topic = "{topic}"\n[decide]\nstate_dir = "{state}"\n'
        f"[observability]\nmetrics_port = 0\n"
    )
    return path


def committed_all(bootstrap: str, group: str, topic: str, ends: dict[int, int]) -> bool:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        done = consumer.committed([TopicPartition(topic, p) for p in ends], 30)
        return all(tp.offset >= ends[tp.partition] for tp in done)
    finally:
        consumer.close()


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--alerts-per-object", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    messages = scored_messages(args.objects, args.alerts_per_object)
    results: dict[str, object] = {"objects": args.objects, "alerts": len(messages)}
    results.update(in_process(messages))
    with tempfile.TemporaryDirectory(prefix="decide-bench-") as folder:
        results.update(through_kafka(Path(folder), messages, args.objects))
    results.update(
        machine=f"{platform.machine()}, {os.cpu_count()} cores",
        date=dt.datetime.now(dt.UTC).isoformat(timespec="minutes"),
    )
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


def through_kafka(tmp: Path, messages: list[tuple[str, bytes, list]], objects: int) -> dict:
    results: dict[str, float] = {}
    with LocalKafka(port=_free_port(), data_dir=tmp / "kafka") as kafka:
        bootstrap, topic = kafka.bootstrap, "bench_scored"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS)])[topic].result(30)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
        for key, value, headers in messages:
            while True:
                try:
                    producer.produce(topic, value, key, headers=headers)
                    break
                except BufferError:
                    producer.poll(0.1)
        producer.flush(120)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-wm"})
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), 30)[1]
            for p in range(PARTITIONS)
        }
        consumer.close()

        config = write_config(tmp / "a.toml", bootstrap, topic, tmp / "state-a")
        log = (tmp / "a.log").open("w")
        stage = subprocess.Popen(
            [sys.executable, "-m", "btsbot_stream", "decide", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        while "assigned [" not in (tmp / "a.log").read_text():
            time.sleep(0.2)
        started = time.monotonic()
        while not committed_all(bootstrap, "btsbot-decide", topic, ends):
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        stage.terminate()
        stage.wait(120)
        log.close()
        events = len(read_to_end({"bootstrap.servers": bootstrap}, "ztf_btsbot_candidates", 120))
        changelog = read_to_end(
            {"bootstrap.servers": bootstrap}, f"changelog__btsbot-decide--{topic}--default", 300
        )
        values = [len(m.value()) for m in changelog if m.value() and m.key().endswith(b'|"object"')]
        results.update(
            stage_alerts_per_s=len(messages) / elapsed,
            stage_events_per_s=events / elapsed,
            events=events,
            value_bytes_per_object=sum(values[-objects:]) / objects,
        )

        config = write_config(tmp / "b.toml", bootstrap, topic, tmp / "state-b")
        restore = subprocess.run(
            [
                sys.executable,
                "-m",
                "btsbot_stream",
                "decide",
                "--config",
                str(config),
                "--exit-when-idle",
                "3",
            ],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        seconds = float(re.search(r"state restored in ([0-9.]+) s", restore.stderr)[1])
        results.update(
            restore_s=seconds,
            restore_s_per_100k_objects=seconds * 100_000 / objects,
            rocksdb_bytes_per_object=folder_bytes(tmp / "state-b") / objects,
        )
    return results


if __name__ == "__main__":
    main()
