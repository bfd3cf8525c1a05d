"""``btsbot-stream score`` over hostile inputs: exactly one line per input (archive members
included) whatever it holds, the run goes on past a damaged archive and exits 0; an
exception nobody foresaw is an ``internal_error`` line naming its type, logged once."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from btsbot_stream import scoring
from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.sources import read_items
from corpus import alert_set
from hostile import certain_rejects, packets_of

# The poison pills and bombs, one file each.
PICKED = (
    "flip-schema-utf8",
    "codec-not-utf8",
    "schema-null",
    "schema-int",
    "schema-nested",
    "empty",
    "bomb-",
    "fits-naxis-negative",
    "record-history-jd-null",
    "record-history-magpsf-string",
    "record-candidate-string",
    "record-stampdata-string",
)


def _tar(path: Path, members: dict[str, bytes], cut: int = 0) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    path.write_bytes(data[: len(data) - cut] if cut else data)


def test_one_line_per_hostile_input_and_exit_0(models_dir: Path, tmp_path: Path):
    packets = packets_of(alert_set("demo").files)[:3]
    cases = [c for c in certain_rejects(packets) if c.name.startswith(PICKED)]
    folder = tmp_path / "in"
    folder.mkdir()
    for index, case in enumerate(cases):
        (folder / f"{index:03d}.avro").write_bytes(case.data)
    members = {f"m{i}.avro": c.data for i, c in enumerate(cases[:5])}
    members["good.avro"] = packets[0][1]
    _tar(folder / "hostile.tar.gz", members)
    _tar(folder / "zz-damaged.tar.gz", {"a.avro": packets[1][1], "b.avro": packets[2][1]}, cut=600)
    (folder / "zzz-last.avro").write_bytes(packets[2][1])  # read after the damaged archive
    out = tmp_path / "scores.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "btsbot_stream",
            "score",
            str(folder),
            "--models-dir",
            str(models_dir),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    per_input = Counter(line["file"] for line in lines)
    for index, case in enumerate(cases):
        line = next(x for x in lines if x["file"] == str(folder / f"{index:03d}.avro"))
        assert per_input[line["file"]] == 1, case.name
        assert line.get("error") in case.reasons or (not case.reasons and "error" in line), (
            case.name,
            line,
        )
    archive = [x for x in lines if x["file"].startswith(str(folder / "hostile.tar.gz:"))]
    assert len(archive) == 6 and sum("scores" in x for x in archive) == 1
    damaged = [x for x in lines if "zz-damaged" in x["file"]]
    assert damaged[-1]["error"] == "input_unreadable", damaged  # one line for the damage
    assert sum(x.get("error") == "input_unreadable" for x in damaged) == 1
    assert "scores" in next(x for x in lines if x["file"].endswith("zzz-last.avro"))
    assert max(per_input.values()) == 1


def test_files_over_the_message_limit_are_not_read(tmp_path: Path):
    big = tmp_path / "big.avro"
    big.write_bytes(b"Obj\x01" + bytes(5000))
    (item,) = read_items([big], max_bytes=4096)
    assert item.failure is not None and item.failure.reason == "message_too_large"
    assert item.data == b""
    (gone,) = read_items([tmp_path / "vanished.avro"])
    assert gone.failure is not None and gone.failure.reason == "input_unreadable"


def test_unforeseen_exception_is_an_internal_error_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    packet = packets_of(alert_set("demo").files)[0][1]

    def broken(*args: object, **kwargs: object) -> object:
        raise ZeroDivisionError("a bug of ours")

    monkeypatch.setattr(scoring, "prepare", broken)
    monkeypatch.setattr(scoring, "_unforeseen", scoring.LogLimiter(scoring.log, 3600.0))
    decoder = AlertDecoder()
    with caplog.at_level(logging.ERROR, logger="btsbot_stream.scoring"):
        messages = [scoring.prepare_message(decoder, packet) for _ in range(5)]
    for message in messages:
        ((_, reject),) = message.records
        assert reject.reason == "internal_error"
        assert "ZeroDivisionError" in reject.detail and "preparation" in reject.detail
    assert len(caplog.records) == 1 and caplog.records[0].exc_info is not None
    monkeypatch.setattr(AlertDecoder, "decode", broken)
    assert scoring.prepare_message(decoder, packet).failure.reason == "internal_error"


def test_process_level_errors_are_not_swallowed(monkeypatch: pytest.MonkeyPatch):
    """A BtsbotError that is not an InvalidAlert (e.g. the registry unreachable) is not
    the message's fault: it goes through the boundary."""
    from btsbot_stream.errors import BtsbotError

    def unreachable(self: AlertDecoder, data: bytes) -> object:
        raise BtsbotError("registry unreachable")

    monkeypatch.setattr(AlertDecoder, "decode", unreachable)
    with pytest.raises(BtsbotError, match="unreachable"):
        scoring.prepare_message(AlertDecoder(), b"\x00\x00\x00\x00\x07xx")
