"""Test helpers around the real broker: run the service as a process, read topics back."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from btsbot_stream.stream.summary import read_to_end


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(
    bootstrap: str, topic: str, partitions: int, config: dict[str, str] | None = None
) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, num_partitions=partitions, config=config or {})
    admin.create_topics([new])[topic].result(30)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]

    def alert(self) -> dict[str, Any]:
        (record,) = fastavro.reader(io.BytesIO(self.value))
        return record  # type: ignore[return-value]


def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Record]:
    """Every committed message of ``topic``, up to its high watermarks at call time."""
    return [
        Record(
            m.topic() or "",
            m.partition() or 0,
            m.offset() or 0,
            m.key(),
            m.value() or b"",
            dict(m.headers() or []),
        )
        for m in read_to_end({"bootstrap.servers": bootstrap}, topic, timeout)
    ]


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 30)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("wm")})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()


def write_config(path: Path, **sections: dict[str, Any]) -> Path:
    """A TOML config file from nested dicts (strings, numbers, lists, booleans, tables)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str | Path):
            return '"' + str(v).replace("\\", "\\\\") + '"'
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return str(v)

    lines = [f"{k} = {value(v)}" for k, v in sections.items() if not isinstance(v, dict)]
    for section, fields in sections.items():
        if not isinstance(fields, dict):
            continue
        lines.append(f"[{section}]")
        nested = {k: v for k, v in fields.items() if isinstance(v, dict)}
        lines += [f"{k} = {value(v)}" for k, v in fields.items() if not isinstance(v, dict)]
        for name, table in nested.items():
            lines.append(f"[{section}.{name}]")
            lines += [f'"{k}" = {value(v)}' for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


RUNNING: list[ServiceProcess] = []  # killed after each test (conftest), even a failed one


class ServiceProcess:
    """A ``btsbot-stream`` command (``run`` by default) as a child process, its log in a
    file; killed after each test (``RUNNING``), even a failed one."""

    def __init__(
        self,
        config: Path,
        log: Path,
        exit_when_idle: float | None = None,
        command: str = "run",
    ) -> None:
        args = [sys.executable, "-m", "btsbot_stream", command, "--config", str(config)]
        if exit_when_idle is not None:
            args += ["--exit-when-idle", str(exit_when_idle)]
        self.log = log
        self._log_handle = log.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            args, stdout=self._log_handle, stderr=subprocess.STDOUT, env=env
        )
        RUNNING.append(self)

    def wait(self, timeout: float = 300) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log_handle.close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.wait(30)

    def terminate(self, timeout: float = 120) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never logged:\n{self.log_text()[-3000:]}")
            time.sleep(0.3)
