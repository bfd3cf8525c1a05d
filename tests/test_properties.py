"""Property-based tests (hypothesis) over decode + prepare: whatever the bytes, and
whatever the schema, ``prepare_message`` returns outcomes, never raises, in bounded
memory; and the datum walk that enforces the limits agrees with fastavro on valid data.

Derandomized (the same examples on every run) so CI stays deterministic; the longer,
open-ended search is the atheris target in ``tests/fuzz/``.
"""

from __future__ import annotations

import io
import itertools
import json
import random
import tracemalloc
from typing import Any

import fastavro
import pytest
from fastavro.utils import generate_one
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.bounds import Layout
from btsbot_stream.scoring import PreparedMessage, prepare_message
from corpus import alert_set
from hostile import packets_of
from hostile_payloads import container

PEAK_BYTES = 64 << 20
PROFILE = settings(
    max_examples=250,
    derandomize=True,
    database=None,
    deadline=None,  # a loaded 2-core machine: time is checked by the hostile tests
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PACKETS = [data for _, data in packets_of(alert_set("demo").files)]
DECODER = AlertDecoder()
PRIMITIVES = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]


def _prepared_within_bounds(data: bytes) -> PreparedMessage:
    tracemalloc.start()
    try:
        message = prepare_message(DECODER, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES
    outcomes = [message.failure] if message.failure else [p for _, p in message.records]
    assert outcomes, "a message without any outcome"
    assert all(getattr(o, "reason", None) != "internal_error" for o in outcomes), outcomes
    return message


@st.composite
def damaged_packets(draw: st.DrawFn) -> bytes:
    """A real packet with up to four flips, cuts, insertions, deletions or repeats."""
    data = bytearray(draw(st.sampled_from(PACKETS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["flip", "cut", "insert", "delete", "repeat"]))
        if edit == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif edit == "cut":
            del data[at:]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 4096))]
        if not data:
            break
    return bytes(data)


@st.composite
def avro_schemas(draw: st.DrawFn, recursive: bool = True) -> dict[str, Any]:
    """A record schema of nested records, arrays, maps, unions, enums and fixed; with
    ``recursive``, unions may refer back to an enclosing record."""
    names = itertools.count()

    def node(depth: int, enclosing: tuple[str, ...]) -> Any:
        kinds = ["primitive"] * 3 + (
            ["record", "array", "map", "union", "enum", "fixed"] if depth < 4 else []
        )
        kind = draw(st.sampled_from(kinds))
        if kind == "primitive":
            return draw(st.sampled_from(PRIMITIVES))
        if kind == "record":
            name = f"r{next(names)}"
            count = draw(st.integers(0, 4))
            fields = [
                {"name": f"f{i}", "type": node(depth + 1, (*enclosing, name))} for i in range(count)
            ]
            return {"type": "record", "name": name, "fields": fields}
        if kind == "array":
            return {"type": "array", "items": node(depth + 1, enclosing)}
        if kind == "map":
            return {"type": "map", "values": node(depth + 1, enclosing)}
        if kind == "union":
            branches: list[Any] = draw(
                st.lists(st.sampled_from(PRIMITIVES), min_size=1, max_size=3, unique=True)
            )
            if recursive and enclosing and draw(st.booleans()):
                branches.append(draw(st.sampled_from(enclosing)))
            return branches
        if kind == "enum":
            return {"type": "enum", "name": f"e{next(names)}", "symbols": ["A", "B", "C"]}
        return {"type": "fixed", "name": f"x{next(names)}", "size": draw(st.integers(0, 8))}

    fields = [{"name": f"f{i}", "type": node(1, ("top",))} for i in range(draw(st.integers(0, 5)))]
    return {"type": "record", "name": "top", "fields": fields}


@PROFILE
@given(damaged_packets())
def test_damaged_real_packets_give_outcomes_never_exceptions(data: bytes):
    _prepared_within_bounds(data)


@PROFILE
@given(
    avro_schemas(),
    st.binary(max_size=300),
    st.sampled_from([0, 1, 2, 7, 2**40]),
    st.sampled_from([b"null", b"deflate", b"snappy"]),
)
def test_any_schema_with_any_bytes_gives_an_outcome(schema, body, count, codec):
    meta = {"avro.schema": json.dumps(schema).encode(), "avro.codec": codec}
    _prepared_within_bounds(container(meta, [(count, body)]))


@PROFILE
@given(avro_schemas(recursive=False), st.integers(0, 2**32))
def test_the_limit_walk_agrees_with_fastavro(schema, seed):
    parsed = fastavro.parse_schema(schema)
    random.seed(seed)
    record = generate_one(parsed)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    datum = buf.getvalue()
    assert Layout.of(parsed, max_depth=64).check(datum + b"tail", 0, max_items=10**9) == len(datum)
    (decoded,) = DECODER.decode(
        container({"avro.schema": json.dumps(schema).encode()}, [(1, datum)])
    )
    assert decoded.datum == datum


def test_generated_schemas_include_recursive_ones():
    """The schema strategy reaches the recursive case the walk must bound."""
    seen = []

    @settings(max_examples=100, derandomize=True, database=None)
    @given(avro_schemas())
    def look(schema):
        seen.append(Layout.of(fastavro.parse_schema(schema), 64).recursive)

    look()
    assert any(seen) and not all(seen)


@pytest.mark.parametrize("data", PACKETS[:3], ids=["p0", "p1", "p2"])
def test_real_packets_walk_to_their_end(data: bytes):
    """The walk (used only for unusual messages) reads every real alert as fastavro does."""
    (alert,) = DECODER.decode(data)
    layout = alert.schema.layout
    assert not layout.recursive and layout.min_item_bytes and layout.min_item_bytes >= 50
    assert layout.check(alert.datum, 0, max_items=10**9) == len(alert.datum)
