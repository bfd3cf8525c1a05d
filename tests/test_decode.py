"""Decoding: every official schema version, every codec, both framings, strictness."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import fastavro
import numpy as np
import pytest
from fastavro.utils import generate_one

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.alerts.registry import DirectorySchemas, load_avsc
from corpus import AlertSet

SCHEMA_VERSIONS = ["1.8", "2.0", "3.0", "3.1", "3.2", "3.3", "4.01", "4.02"]


def _container(schema: object, records: list[dict], codec: str = "null") -> bytes:
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(schema), records, codec=codec)
    return buf.getvalue()


@pytest.fixture(scope="module")
def official(ztf: Path) -> dict[str, object]:
    found = sorted(p.name for p in (ztf / "schemas").iterdir())
    assert found == SCHEMA_VERSIONS, "the shared schema set changed: update this test"
    return {v: load_avsc(ztf / "schemas" / v / "alert.avsc") for v in SCHEMA_VERSIONS}


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("codec", ["null", "deflate", "snappy"])
def test_every_schema_version_and_codec_decodes(official, version, codec):
    schema = official[version]
    random.seed(version)
    records = [generate_one(schema) for _ in range(3)]
    decoded = AlertDecoder().decode(_container(schema, records, codec))
    assert len(decoded) == 3
    for got, sent in zip(decoded, records, strict=True):
        assert got.record["candid"] == sent["candid"]
        assert got.record["candidate"]["jd"] == sent["candidate"]["jd"]
        # magpsf is an Avro float: it comes back as the float32 nearest to what was sent
        assert got.record["candidate"]["magpsf"] == np.float32(sent["candidate"]["magpsf"])
        # the kept raw datum is the record's exact binary encoding
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), sent)
        assert got.datum == buf.getvalue()


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_wire_format_with_schema_directory(official, version, tmp_path: Path):
    schema_id = 100 + SCHEMA_VERSIONS.index(version)
    (tmp_path / f"{schema_id}.avsc").write_text(json.dumps(official[version]))
    record = generate_one(official[version])
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(official[version]), record)
    message = b"\x00" + schema_id.to_bytes(4, "big") + buf.getvalue()
    decoder = AlertDecoder(DirectorySchemas(tmp_path))
    (alert,) = decoder.decode(message)
    assert alert.record["candid"] == record["candid"]
    assert decoder.decode(message)[0].schema is alert.schema  # parsed once, then cached


def test_wire_format_unknown_schema_id(tmp_path: Path):
    message = b"\x00" + (7).to_bytes(4, "big") + b"\x02\x04"
    with pytest.raises(InvalidAlert) as err:
        AlertDecoder(DirectorySchemas(tmp_path)).decode(message)
    assert err.value.reason == "schema_unknown" and "7" in err.value.detail
    with pytest.raises(InvalidAlert, match="no schema registry"):
        AlertDecoder().decode(message)


def test_real_alerts_decode_like_fastavro(real_alerts: AlertSet):
    """The projected record equals fastavro.reader's full decode on the fields we keep."""
    decoder = AlertDecoder()
    files = real_alerts.files
    assert len(files) == {"demo": 30, "shared": 556}[real_alerts.name]
    for path in files:
        data = path.read_bytes()
        (full,) = fastavro.reader(io.BytesIO(data))
        (ours,) = decoder.decode(data)
        assert ours.record["candid"] == full["candid"]
        for key, value in ours.record["candidate"].items():
            assert value == full["candidate"][key], (path, key)
        history = [
            {k: p[k] for k in ("jd", "magpsf") if k in p} for p in full["prv_candidates"] or []
        ]
        assert (ours.record["prv_candidates"] or []) == history
        for stamp in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
            assert ours.record[stamp]["stampData"] == full[stamp]["stampData"]
    # one schema per distinct embedded schema text, far fewer than files
    assert decoder.schemas_seen <= 20


@pytest.fixture()
def real_packet(demo_alerts: Path) -> bytes:
    return (demo_alerts / "20200202" / "1105522281015015000.avro").read_bytes()


def _embedded(path: Path) -> tuple[dict, dict]:
    with path.open("rb") as fh:
        reader = fastavro.reader(fh)
        (record,) = reader
        return reader.writer_schema, record


@pytest.mark.parametrize("codec", ["null", "deflate", "snappy"])
def test_sample_alerts_reencoded_with_every_codec_decode(demo_alerts: Path, codec: str):
    """Each demo alert, written again with its own embedded schema and a codec."""
    for path in sorted((demo_alerts / "20231012").glob("*.avro"))[:3]:
        schema, record = _embedded(path)
        (got,) = AlertDecoder().decode(_container(schema, [record], codec))
        assert got.record["candid"] == record["candid"]
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
        assert got.datum == buf.getvalue()


def test_sample_alert_in_wire_format(demo_alerts: Path, tmp_path: Path):
    schema, record = _embedded(demo_alerts / "20231012" / "2475433850315015003.avro")
    (tmp_path / "7.avsc").write_text(json.dumps(schema))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    message = b"\x00" + (7).to_bytes(4, "big") + buf.getvalue()
    (alert,) = AlertDecoder(DirectorySchemas(tmp_path)).decode(message)
    assert alert.record["candid"] == record["candid"]
    assert alert.datum == buf.getvalue()


def test_one_byte_short_is_truncated(real_packet: bytes):
    with pytest.raises(InvalidAlert) as err:
        AlertDecoder().decode(real_packet[:-1])
    assert err.value.reason == "avro_truncated"


def test_cut_mid_block_is_truncated(real_packet: bytes):
    with pytest.raises(InvalidAlert) as err:
        AlertDecoder().decode(real_packet[: len(real_packet) // 2])
    assert err.value.reason == "avro_truncated"
    assert "ends inside block 1" in err.value.detail


def test_byte_removed_inside_block_is_caught(real_packet: bytes):
    damaged = real_packet[:30000] + real_packet[30001:] + b"\n"  # same length, shifted
    with pytest.raises(InvalidAlert) as err:
        AlertDecoder().decode(damaged)
    assert err.value.reason == "avro_malformed"
    assert "sync marker" in err.value.detail


def test_not_avro_at_all():
    with pytest.raises(InvalidAlert) as err:
        AlertDecoder().decode(b"\xff\xd8\xff\xe0JFIF")
    assert err.value.reason == "avro_malformed"
    with pytest.raises(InvalidAlert) as err:
        AlertDecoder().decode(b"")
    assert err.value.reason == "avro_truncated"


def test_wire_format_with_http_schema_registry(official):
    """A Confluent-compatible registry on loopback: GET /schemas/ids/{id}."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from btsbot_stream.alerts.registry import HttpSchemaRegistry

    schema = official["4.02"]
    requests: list[str] = []

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            found = self.path == "/schemas/ids/42"
            body = json.dumps({"schema": json.dumps(schema)} if found else {"error_code": 40403})
            self.send_response(200 if found else 404)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        decoder = AlertDecoder(HttpSchemaRegistry(f"http://127.0.0.1:{server.server_port}"))
        record = generate_one(schema)
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
        message = b"\x00" + (42).to_bytes(4, "big") + buf.getvalue()
        for _ in range(3):
            assert decoder.decode(message)[0].record["candid"] == record["candid"]
        assert requests == ["/schemas/ids/42"]  # fetched once, then cached
        with pytest.raises(InvalidAlert) as err:
            decoder.decode(b"\x00" + (7).to_bytes(4, "big") + buf.getvalue())
        assert err.value.reason == "schema_unknown"
    finally:
        server.shutdown()
