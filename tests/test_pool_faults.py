"""The worker pool under faults: a worker killed mid-batch, a message that crashes its
worker every time, a schema registry away while workers decode, all slots busy, too
little shared memory; and how many workers ``auto`` means."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import fastavro
import pytest
from prometheus_client import REGISTRY

import pool_support
from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.config import EngineSettings, PreparationSettings, RegistrySettings
from btsbot_stream.workers import Decoding, WorkerPool, WorkerPoolError, cores, slots
from btsbot_stream.workers.cores import resolve_processes

DEATHS = "btsbot_preparation_worker_deaths_total"


@pytest.fixture(scope="module")
def good(demo_alerts: Path) -> list[bytes]:
    """The demo sample's 30 regular packets (one JPEG prototype: a reject)."""
    return [p.read_bytes() for p in sorted(demo_alerts.rglob("*.avro")) if "odd" not in p.parts]


def _deaths() -> float:
    return REGISTRY.get_sample_value(DEATHS) or 0.0


def test_a_worker_killed_mid_batch_is_replaced_and_its_batch_redone(good, tmp_path):
    flag = tmp_path / "waiting"
    values = [*good[:17], pool_support.WAIT + str(flag).encode(), *good[17:]]
    with WorkerPool(Decoding(), 2, 2, 64, pool_support.wait_to_be_killed) as pool:
        before, deaths = pool.pids(), _deaths()
        pending = pool.submit(values)
        deadline = time.monotonic() + 60
        while not flag.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        victim = int(flag.read_text())
        assert victim in before
        os.kill(victim, signal.SIGKILL)  # mid-batch: it holds the marker and its task
        batch = pending.result(timeout=120)
        try:
            problems = pool_support.differences(AlertDecoder(), values, list(batch))
        finally:
            batch.release()
        assert not problems, problems
        assert batch[17].failure is not None and batch[17].failure.reason == "avro_malformed"
        assert _deaths() == deaths + 1
        assert victim not in pool.pids() and len(pool.pids()) == 2
        again = pool.submit(good).result(timeout=60)  # the replacement works
        assert not pool_support.differences(AlertDecoder(), good, list(again))


def test_a_message_that_crashes_its_worker_every_time_is_one_internal_error(good, models_dir: Path):
    from btsbot_stream.scoring import load_scorer

    values = [*good[:10], pool_support.SEGFAULT, *good[10:]]
    with WorkerPool(Decoding(), 2, 2, 64, pool_support.segfault) as pool:
        deaths = _deaths()
        batch = pool.submit(values).result(timeout=120)
        try:
            failure = batch[10].failure
            assert failure is not None and failure.reason == "internal_error"
            assert "died (killed by SIGSEGV) 2 times" in failure.detail
            others = [m for i, m in enumerate(batch) if i != 10]
            assert not pool_support.differences(AlertDecoder(), good, others)
            engine = EngineSettings(models_dir=models_dir, device="cpu", warmup=False)
            outcomes = load_scorer(engine).score(list(batch))
        finally:
            batch.release()
        assert [o.reject.reason for o in outcomes[10] if o.reject] == ["internal_error"]
        assert len(outcomes[10]) == 1 and sum(not o.ok for out in outcomes for o in out) == 2
        assert _deaths() == deaths + 2  # tried twice, then given up: no crash loop
        assert len(pool.pids()) == 2
        assert not pool_support.differences(
            AlertDecoder(), good, list(pool.submit(good).result(60))
        )


class _Registry(BaseHTTPRequestHandler):
    schemas: ClassVar[dict[int, str]] = {}

    def do_GET(self) -> None:
        text = self.schemas.get(int(self.path.rsplit("/", 1)[-1]))
        self.send_response(200 if text else 404)
        self.end_headers()
        self.wfile.write(json.dumps({"schema": text}).encode())

    def log_message(self, *args: object) -> None:
        return


def test_a_registry_away_in_the_workers_reaches_the_caller_then_redo_prepares(good):
    messages = []
    for data in good:
        reader = fastavro.reader(io.BytesIO(data))
        _Registry.schemas[1] = reader.metadata["avro.schema"]
        (record,) = reader
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, reader.writer_schema, record)
        messages.append(b"\x00" + (1).to_bytes(4, "big") + buf.getvalue())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    server.server_close()  # nothing listens there yet: connection refused
    decoding = Decoding(schema_registry=url, registry=RegistrySettings(timeout_s=2))
    with WorkerPool(decoding, 2, 2, 64) as pool:
        batch = pool.submit(messages).result(timeout=60)
        assert sorted(batch.registry_down) == list(range(len(messages)))  # none dead-lettered
        with pytest.raises(RuntimeError, match="wait for the registry"):
            list(batch)
        server = ThreadingHTTPServer(server.server_address, _Registry)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            batch = pool.redo(batch).result(timeout=60)
            assert not batch.registry_down
            decoder, _ = decoding.decoder()
            assert not pool_support.differences(decoder, messages, list(batch))
        finally:
            batch.release()
            server.shutdown()
            server.server_close()


def test_batches_wait_for_a_free_slot(good):
    with WorkerPool(Decoding(), 1, 2, 64) as pool:
        first = pool.submit(good).result(timeout=60)
        second = pool.submit(good).result(timeout=60)
        backwards = good[::-1]
        third = pool.submit(backwards)
        with pytest.raises(TimeoutError):  # both slots held: it waits
            third.result(timeout=1.0)
        first.release()
        batch = third.result(timeout=60)  # in the first batch's slot, written afresh
        assert not pool_support.differences(AlertDecoder(), backwards, list(batch))
        assert not pool_support.differences(AlertDecoder(), good, list(second))


def test_shared_memory_is_freed_at_close(good):
    pool = WorkerPool(Decoding(), 1, 2, 64)
    names = [*pool._arena.names, *pool._arena.input_names]
    pool.submit(good).result(timeout=60)  # not even released
    pool.close()
    assert not [n for n in names if Path("/dev/shm", n).exists()]
    with pytest.raises(WorkerPoolError, match="closed"):
        pool.submit(good).result(timeout=10)


def test_too_little_shared_memory_stops_at_start_with_the_fix(monkeypatch):
    class Tiny:
        f_bavail, f_frsize = 1000, 4096  # 4 MiB

    monkeypatch.setattr(slots.os, "statvfs", lambda path: Tiny())
    with pytest.raises(WorkerPoolError, match=r"shm-size.*preparation\.slots"):
        WorkerPool(Decoding(), 2, 3, 256)


@pytest.mark.parametrize(
    ("cores_available", "device", "threads", "expected"),
    [
        (1, "cpu", 0, 0),  # one core: a thread does as well
        (2, "cpu", 0, 2),  # ONNX Runtime on every core: workers share them
        (8, "cpu", 2, 6),  # the cores ONNX Runtime leaves
        (4, "cpu", 4, 4),  # ONNX Runtime on every core: workers share them
        (16, "cuda", 0, 15),  # one core feeds the GPU
    ],
)
def test_auto_processes(monkeypatch, cores_available, device, threads, expected):
    monkeypatch.setattr(cores, "available_cores", lambda: cores_available)
    engine = EngineSettings(device=device, threads=threads)
    assert resolve_processes(PreparationSettings(), engine) == expected
    assert resolve_processes(PreparationSettings(processes=3), engine) == 3


def test_available_cores_follow_the_cgroup_quota(monkeypatch, tmp_path):
    quota = tmp_path / "cpu.max"
    monkeypatch.setattr(cores, "CGROUP_CPU_MAX", quota)
    quota.write_text("max 100000\n")
    assert cores.available_cores() == len(os.sched_getaffinity(0))
    quota.write_text("50000 100000\n")  # half a CPU: one core
    assert cores.available_cores() == 1
