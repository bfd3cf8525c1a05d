"""The [limits] settings: each one refuses what exceeds it with its own reason, before
allocating; each is configurable (TOML, environment, ``score`` options); the defaults
are far above every real alert of the corpus."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import fastavro
import pytest

from btsbot_stream import config
from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.bounds import Layout
from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.alerts.schemas import _load_json
from btsbot_stream.config import LimitSettings
from btsbot_stream.scoring import prepare_message
from hostile_payloads import _zigzag, container, datum, deflate, parts

MARGIN = 10  # every default at least this many times the largest real value


@pytest.fixture(scope="module")
def packet(demo_alerts: Path) -> bytes:
    return (demo_alerts / "20200202" / "1105522281015015000.avro").read_bytes()


def _reason(data: bytes, **limits: int) -> str | None:
    message = prepare_message(AlertDecoder(limits=LimitSettings(**limits)), data)
    reject = message.failure or message.records[0][1]
    return getattr(reject, "reason", None)


def test_each_limit_has_its_own_reason(packet: bytes):
    schema, record = parts(packet)
    text = json.dumps(schema).encode()
    assert _reason(packet) is None  # scored under the defaults
    assert _reason(packet, max_message_bytes=len(packet) - 1) == "message_too_large"
    assert _reason(packet, max_schema_bytes=1000) == "schema_too_large"
    assert _reason(packet, max_nesting_depth=6) == "avro_too_deep"  # ZTF's JSON: 10 deep
    assert _reason(packet, max_block_bytes=1000) == "avro_block_too_large"
    body = datum(schema, record)
    deflated = container({"avro.schema": text, "avro.codec": b"deflate"}, [(1, deflate(body))])
    assert _reason(deflated, max_block_bytes=len(body)) is None
    assert _reason(deflated, max_block_bytes=len(body) - 1) == "avro_block_too_large"
    two = container({"avro.schema": text}, [(2, datum(schema, record) * 2)])
    assert _reason(two, max_records=1) == "avro_too_many_records"
    history = len(record["prv_candidates"])
    assert _reason(packet, max_array_items=history) is None  # walked, and within
    assert _reason(packet, max_array_items=history - 1) == "array_too_long"
    assert _reason(packet, max_stamp_bytes=10_000) == "cutout_too_large"


def test_schema_cache_keeps_the_most_recent(packet: bytes):
    schema, record = parts(packet)
    decoder = AlertDecoder(limits=LimitSettings(schema_cache_size=3))
    for round_ in range(2):
        for i in range(6):  # six distinct texts of one schema
            schema["doc"] = f"variant {i}"
            message = container(
                {"avro.schema": json.dumps(schema).encode()}, [(1, datum(schema, record))]
            )
            (alert,) = decoder.decode(message)
            assert alert.record["candid"] == record["candid"], (round_, i)
            assert decoder.schemas_seen <= 3
    again = decoder.decode(message)[0].schema
    assert decoder.decode(message)[0].schema is again  # the most recent stays parsed


def test_a_refused_schema_is_not_parsed_again(packet: bytes, monkeypatch: pytest.MonkeyPatch):
    from btsbot_stream.alerts import schemas

    calls = Counter()
    real_parse = schemas.fastavro.parse_schema
    monkeypatch.setattr(
        schemas.fastavro, "parse_schema", lambda s: calls.update(["parse"]) or real_parse(s)
    )
    bad = container(
        {"avro.schema": b'{"type": "record", "name": "x", "fields": [{"name": 1}]}'}, [(1, b"")]
    )
    decoder = AlertDecoder()
    for _ in range(5):
        with pytest.raises(InvalidAlert) as err:
            decoder.decode(bad)
        assert err.value.reason == "avro_malformed"
    assert calls["parse"] == 1


def test_walk_reads_blocks_that_state_their_size():
    """Arrays may be written as blocks with a negative count and a byte size (spec 1.11)."""
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "a",
            "fields": [{"name": "xs", "type": {"type": "array", "items": "long"}}],
        }
    )
    items = _zigzag(7) + _zigzag(8) + _zigzag(9)
    body = (
        _zigzag(-3)
        + _zigzag(len(items))
        + items
        + _zigzag(-1)
        + _zigzag(1)
        + _zigzag(5)
        + _zigzag(0)
    )
    layout = Layout.of(schema, 64)
    assert layout.check(body, 0, max_items=4) == len(body)
    assert fastavro.schemaless_reader(io.BytesIO(body), schema, None) == {"xs": [7, 8, 9, 5]}
    with pytest.raises(InvalidAlert) as err:
        layout.check(body, 0, max_items=3)
    assert err.value.reason == "array_too_long"


def test_limits_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "config.toml"
    path.write_text(
        '[kafka]\ninput_topics = ["t"]\n[limits]\nmax_stamp_bytes = 2000000\nmax_records = 5\n'
    )
    monkeypatch.setenv("BTSBOT_LIMITS__MAX_RECORDS", "7")
    limits = config.load(path).limits
    assert limits.max_stamp_bytes == 2_000_000 and limits.max_records == 7
    assert limits.max_message_bytes == LimitSettings().max_message_bytes
    monkeypatch.delenv("BTSBOT_LIMITS__MAX_RECORDS")
    path.write_text('[kafka]\ninput_topics = ["t"]\n[limits]\nmax_records = 0\n')
    with pytest.raises(config.ConfigError, match=r"limits\.max_records"):
        config.load(path)


def test_score_takes_limits_as_options_and_environment(
    demo_alerts: Path, models_dir: Path, tmp_path: Path
):
    out = tmp_path / "s.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "btsbot_stream",
            "score",
            str(demo_alerts / "20200202"),
            "--models-dir",
            str(models_dir),
            "--max-stamp-bytes",
            "10000",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "BTSBOT_LIMITS__MAX_RECORDS": "3"},
    )
    assert done.returncode == 0, done.stderr
    reasons = Counter(json.loads(line).get("error") for line in out.read_text().splitlines())
    assert reasons == {"cutout_too_large": 12}
    assert (
        "BTSBOT_LIMITS__MAX_STAMP_BYTES"
        in subprocess.run(
            [sys.executable, "-m", "btsbot_stream", "score", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    )


def test_defaults_are_far_above_the_corpus(ztf: Path):
    """The margins the docs state: the largest real value of each limited quantity."""
    largest: Counter[str] = Counter()
    for path in sorted(ztf.rglob("*.avro")):
        data = path.read_bytes()
        largest["max_message_bytes"] = max(largest["max_message_bytes"], len(data))
        try:
            reader = fastavro.reader(io.BytesIO(data))
            records = list(reader)
        except Exception:
            continue  # the damaged ones (odd/): not real sizes
        text = reader.metadata["avro.schema"]
        largest["max_schema_bytes"] = max(largest["max_schema_bytes"], len(text.encode()))
        for depth in range(1, 64):
            try:
                _load_json(text, depth)
                break
            except InvalidAlert:
                continue
        largest["max_nesting_depth"] = max(largest["max_nesting_depth"], depth)
        largest["max_records"] = max(largest["max_records"], len(records))
        largest["max_block_bytes"] = max(largest["max_block_bytes"], len(data))
        for record in records:
            items = sum(len(record.get(k) or []) for k in ("prv_candidates", "fp_hists"))
            largest["max_array_items"] = max(largest["max_array_items"], items)
            for key in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
                stamp = (record.get(key) or {}).get("stampData") or b""
                if stamp[:2] == b"\x1f\x8b":
                    size = len(gzip.decompress(stamp))
                    largest["max_stamp_bytes"] = max(largest["max_stamp_bytes"], size)
    defaults = LimitSettings()
    for name, value in sorted(largest.items()):
        margin = getattr(defaults, name) / value
        default = getattr(defaults, name)
        print(f"{name:<18} largest real {value:>8}  default {default:>9}  x{margin:.0f}")
        assert margin >= MARGIN, name
