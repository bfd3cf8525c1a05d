"""Stream benchmarks through a real local Apache Kafka (results go in docs/benchmarks.md).

1. sustained: N alerts already in the input topic, the service started; alerts/s between
   the first and the last output (producer timestamps), against ``btsbot-stream bench
   --stage score`` (the file-based end-to-end rate) on the same alerts, with the same
   model and preparation (``--model``, ``--processes``).
2. latency: alerts replayed at half the sustained rate; per-alert output time minus input
   time (both Kafka CreateTime), p50/p99.
3. burst: the service idle and warm, N alerts produced at once; time from the first
   input to the last output.

The alerts are the repository's demo sample (or ``--source``, e.g.
``../shared/data/ztf/alerts``), repeated under new candids; the model comes from the
repository's ``models/`` (or ``--models-dir``).

Usage: python deploy/bench/stream_bench.py [--source DIR] [--alerts 10000]
       [--model btsbot-v1.0.1] [--processes auto] [--models-dir models] [--json F]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import fastavro
import numpy as np
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from btsbot_stream.alerts.sources import SourceItem
from btsbot_stream.stream.replay import replay

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent / "kafka"))
from good_alerts import good_alerts  # noqa: E402
from local_kafka import LocalKafka, _free_port  # noqa: E402
from proc_tree import tree_cpu  # noqa: E402


def make_alerts(source: Path, count: int, folder: Path) -> list[bytes]:
    """``count`` real alerts (good ones, repeated under new candids), as packets."""
    originals = good_alerts(source)
    packets = []
    for i in range(count):
        schema, record = originals[i % len(originals)]
        copy = i // len(originals)
        record["candid"] = record["candidate"]["candid"] = record["candid"] % 10**16 + copy * 10**16
        buf = io.BytesIO()
        fastavro.writer(buf, schema, [record])
        packets.append(buf.getvalue())
        if i < 2000:  # enough for the file-based comparison
            (folder / f"{i}.avro").write_bytes(buf.getvalue())
    return packets


class CpuSampler(threading.Thread):
    """(wall time, CPU seconds) of each watched process tree, four times a second."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.25):
            self.samples.append((time.time(), {k: tree_cpu(p) for k, p in self.pids.items()}))

    def per_alert_ms(self, start: float, end: float, alerts: int) -> dict[str, float]:
        """CPU milliseconds per alert of each tree between two wall times."""
        first = min(self.samples, key=lambda s: abs(s[0] - start))[1]
        last = min(self.samples, key=lambda s: abs(s[0] - end))[1]
        return {k: 1000 * (last[k] - first[k]) / alerts for k in self.pids}


def produce(bootstrap: str, topic: str, packets: list[bytes], rate: float | None = None) -> None:
    items = (SourceItem("bench", packet) for packet in packets)
    replay(items, {"bootstrap.servers": bootstrap}, topic, rate)


def read_timestamps(bootstrap: str, topic: str, expected: int, timeout: float) -> dict[int, int]:
    """candid -> CreateTime (ms) of its first output, waiting for ``expected`` of them."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < expected and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        candid = int(dict(msg.headers())["ztf.candid"])
        seen.setdefault(candid, msg.timestamp()[1])
    consumer.close()
    return seen


def input_timestamps(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: dict[int, int] = {}
    idle = 0
    while idle < 6:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            idle += 1
            continue
        idle = 0
        (record,) = fastavro.reader(io.BytesIO(msg.value()))
        out[record["candid"]] = msg.timestamp()[1]
    consumer.close()
    return out


def service(
    bootstrap: str, topic: str, out: str, args: argparse.Namespace, tmp: Path, idle: float | None
):
    config = tmp / f"{out}.toml"
    processes = args.processes if args.processes == "auto" else int(args.processes)
    config.write_text(
        f'[kafka]\nbootstrap_servers = "{bootstrap}"\ngroup_id = "{out}"\n'
        f'input_topics = ["{topic}"]\noutput_topic = "{out}"\ndead_letter_topic = "{out}-dlq"\n'
        f'[engine]\nmodels = ["{args.model}"]\nmodels_dir = "{args.models_dir.resolve()}"\n'
        f'device = "cpu"\n[preparation]\nprocesses = {json.dumps(processes)}\n'
        f"[observability]\nmetrics_port = {_free_port()}\n"
    )
    args = [sys.executable, "-m", "btsbot_stream", "run", "--config", str(config)]
    if idle is not None:
        args += ["--exit-when-idle", str(idle)]
    log = (tmp / f"{out}.log").open("w")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO / "deploy" / "demo" / "alerts")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--model", default="btsbot-v1.0.1")
    parser.add_argument("--processes", default="auto", help="preparation.processes")
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--latency-seconds", type=float, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="btsbot-bench-"))
    result: dict[str, object] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "command": "python deploy/bench/stream_bench.py " + " ".join(sys.argv[1:]),
        "alerts": args.alerts,
        "source": str(args.source),
        "model": args.model,
        "processes": args.processes,
        "load_average_before": os.getloadavg(),
    }
    (tmp / "files").mkdir()
    packets = make_alerts(args.source, args.alerts, tmp / "files")
    # the file-based reference on the same alerts
    bench = subprocess.run(
        [
            sys.executable,
            "-m",
            "btsbot_stream",
            "bench",
            str(tmp / "files"),
            "--stage",
            "score",
            "--models-dir",
            str(args.models_dir),
            "--model",
            args.model,
            "--processes",
            args.processes,
            "--device",
            "cpu",
            "--repeat",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    file_rate = json.loads(bench.stdout)["alerts_per_s"]
    result["score_cli_alerts_per_s"] = file_rate
    with LocalKafka(port=_free_port(), data_dir=tmp / "kafka") as kafka:
        b = kafka.bootstrap
        admin = AdminClient({"bootstrap.servers": b})
        for name in ("in-sustained", "in-latency", "in-burst"):
            admin.create_topics([NewTopic(name, num_partitions=4)])[name].result(30)

        produce(b, "in-sustained", packets)
        proc = service(b, "in-sustained", "out-sustained", args, tmp, idle=5)
        broker = getattr(getattr(kafka, "_proc", None), "pid", None)
        sampler = CpuSampler({"service": proc.pid, **({"broker": broker} if broker else {})})
        sampler.start()
        stamps = read_timestamps(b, "out-sustained", len(packets), timeout=900)
        sampler.stop.set()
        proc.wait(300)
        times = sorted(stamps.values())
        rate = (len(times) - 1) / ((times[-1] - times[0]) / 1000)
        result["sustained_alerts_per_s"] = rate
        result["fraction_of_score_cli"] = rate / file_rate
        # where the two cores went between the first and the last output
        result["sustained_cpu_ms_per_alert"] = sampler.per_alert_ms(
            times[0] / 1000, times[-1] / 1000, len(times)
        )

        proc = service(b, "in-latency", "out-latency", args, tmp, idle=None)
        time.sleep(8)  # models loaded, group joined
        n = int(rate / 2 * args.latency_seconds)
        produce(b, "in-latency", packets[:n], rate=rate / 2)
        outs = read_timestamps(b, "out-latency", n, timeout=300)
        ins = input_timestamps(b, "in-latency", 4)
        lat = np.array([outs[c] - ins[c] for c in outs if c in ins]) / 1000
        result["latency_at_half_load"] = {
            "rate_alerts_per_s": rate / 2,
            "alerts": len(lat),
            "p50_s": float(np.percentile(lat, 50)),
            "p99_s": float(np.percentile(lat, 99)),
        }
        proc.terminate()
        proc.wait(60)

        proc = service(b, "in-burst", "out-burst", args, tmp, idle=None)
        time.sleep(8)
        t0 = time.time()
        producer = threading.Thread(target=produce, args=(b, "in-burst", packets))
        producer.start()
        outs = read_timestamps(b, "out-burst", len(packets), timeout=900)
        producer.join()
        result["burst"] = {
            "alerts": len(outs),
            "seconds_to_last_published": max(outs.values()) / 1000 - t0,
        }
        proc.terminate()
        proc.wait(60)
    result["load_average_after"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
