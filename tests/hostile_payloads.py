"""The hostile generator's payloads (see :mod:`hostile`): resource bombs, odd FITS stamps,
odd records, and the container writer they share. Deterministic, built from real alerts.

Nothing here is guessed from the code under test: a bomb is checked by what it would
demand (a 2 GiB gzip really inflates to 2 GiB: ``gzip_bomb`` computes its CRC over the
2 GiB), a FITS variant by what astropy reads from it.
"""

from __future__ import annotations

import copy
import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cramjam
import fastavro
import numpy as np
from astropy.io import fits
from isal import isal_zlib

STAMPS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
CORRUPT_STAMP = frozenset({"cutout_corrupt", "cutout_too_large"})
FIELD_INVALID = frozenset({"field_invalid"})
MALFORMED = frozenset({"avro_malformed"})
ANY = frozenset[str]()  # with must_reject: any reason
SYNC = b"btsbot-hostile!!"
GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class Hostile:
    """One hostile message and what it may become."""

    name: str
    data: bytes
    must_reject: bool  # no alert can come out of it
    reasons: frozenset[str] = ANY  # with must_reject: the codes allowed (empty: any)
    must_score: bool = False  # odd but valid: it must be scored


# -- writing containers ---------------------------------------------------------------


def _zigzag(value: int) -> bytes:
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _avro_bytes(value: bytes) -> bytes:
    return _zigzag(len(value)) + value


def container(meta: dict[str, bytes], blocks: list[tuple[int, bytes]]) -> bytes:
    """An Avro container file: ``meta`` as the header, then (record count, data) blocks."""
    out = b"Obj\x01" + _zigzag(len(meta))
    for key, value in meta.items():
        out += _avro_bytes(key.encode()) + _avro_bytes(value)
    out += _zigzag(0) + SYNC
    for count, data in blocks:
        out += _zigzag(count) + _avro_bytes(data) + SYNC
    return out


def datum(schema: Any, record: Any) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def snappy(data: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(data)) + zlib.crc32(data).to_bytes(4, "big")


def alert_message(schema: Any, record: Any, codec: str = "null") -> bytes:
    body = datum(schema, record)
    if codec == "deflate":
        body = deflate(body)
    elif codec == "snappy":
        body = snappy(body)
    meta = {"avro.schema": json.dumps(schema).encode(), "avro.codec": codec.encode()}
    return container(meta, [(1, body)])


def parts(data: bytes) -> tuple[Any, dict[str, Any]]:
    """(schema JSON, full record) of a real single-record container."""
    reader = fastavro.reader(io.BytesIO(data))
    record = next(reader)
    return json.loads(reader.metadata["avro.schema"]), record


# -- bombs ----------------------------------------------------------------------------


def zeros_deflate(size: int, gzip: bool) -> bytes:
    """A valid deflate (or gzip) stream of ``size`` zero bytes, built in milliseconds:
    1 MiB compressed once with a full flush (so it is independent of what precedes it),
    repeated; the gzip trailer's CRC is combined, not computed over 2 GiB."""
    chunk = 1 * MiB
    assert size % chunk == 0
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = packer.compress(bytes(chunk)) + packer.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    body = piece * (size // chunk) + final
    if not gzip:
        return body
    crc, done = zlib.crc32(bytes(chunk)), chunk
    while done < size:  # doubling: crc of 2n zeros from the crc of n zeros
        crc, done = isal_zlib.crc32_combine(crc, crc, done), done * 2
    assert done == size, "size must be a power-of-two multiple of 1 MiB"
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + body + crc.to_bytes(4, "little") + (size % (1 << 32)).to_bytes(4, "little")


def _with_stamps(record: dict[str, Any], stamp: bytes, keys: tuple[str, ...]) -> dict[str, Any]:
    record = dict(record)
    for key in keys:
        record[key] = {**record[key], "stampData": stamp}
    return record


def bombs(real: bytes) -> Iterator[Hostile]:
    schema, record = parts(real)
    gz = zeros_deflate(2 * GiB, gzip=True)  # ~2 MB
    yield Hostile(
        "bomb-stamp-2GiB",
        alert_message(schema, _with_stamps(record, gz, STAMPS[:1])),
        True,
        frozenset({"cutout_too_large"}),
    )
    yield Hostile(  # 6 GiB of stamps behind ~10 kB: gzip inside a deflate-coded block
        "bomb-stamps-in-deflate-block",
        alert_message(schema, _with_stamps(record, gz, STAMPS), codec="deflate"),
        True,
        frozenset({"cutout_too_large"}),
    )
    text = json.dumps(schema).encode()
    yield Hostile(
        "bomb-block-deflate-1GiB",
        container(
            {"avro.schema": text, "avro.codec": b"deflate"}, [(1, zeros_deflate(GiB, False))]
        ),
        True,
        frozenset({"avro_block_too_large"}),
    )
    claims_4gib = b"\xff\xff\xff\xff\x0f" + b"\x00" * 16 + b"\x00\x00\x00\x00"
    yield Hostile(
        "bomb-block-snappy-4GiB",
        container({"avro.schema": text, "avro.codec": b"snappy"}, [(1, claims_4gib)]),
        True,
        frozenset({"avro_block_too_large"}),
    )
    empty = json.dumps({"type": "record", "name": "empty", "fields": []}).encode()
    for count in (2**40, 20_000):
        yield Hostile(
            f"bomb-records-{count}",
            container({"avro.schema": empty}, [(count, b"")]),
            True,
            frozenset({"avro_too_many_records"}),
        )
    nulls = {
        "type": "record",
        "name": "n",
        "fields": [{"name": "a", "type": {"type": "array", "items": "null"}}],
    }
    yield Hostile(
        "bomb-array-null-1e8",
        container({"avro.schema": json.dumps(nulls).encode()}, [(1, _zigzag(10**8) + _zigzag(0))]),
        True,
        frozenset({"array_too_long"}),
    )
    nested = {
        "type": "record",
        "name": "nn",
        "fields": [
            {"name": "a", "type": {"type": "array", "items": {"type": "array", "items": "null"}}}
        ],
    }
    inner = _zigzag(5000) + _zigzag(0)
    yield Hostile(
        "bomb-array-nested-25e6",
        container(
            {"avro.schema": json.dumps(nested).encode()},
            [(1, _zigzag(5000) + inner * 5000 + _zigzag(0))],
        ),
        True,
        frozenset({"array_too_long"}),
    )
    yield Hostile(
        "bomb-history-1e6-points",
        _tiny_history(record, 1_000_000),
        True,
        frozenset({"array_too_long"}),
    )
    chain = {
        "type": "record",
        "name": "link",
        "fields": [{"name": "next", "type": ["null", "link"]}],
    }
    linked = {"type": "record", "name": "top", "fields": [{"name": "n", "type": chain}]}
    yield Hostile(  # fastavro recurses in C per level: 100,000 levels overflow its stack
        "bomb-recursive-1e5-deep",
        container({"avro.schema": json.dumps(linked).encode()}, [(1, b"\x02" * 100_000 + b"\x00")]),
        True,
        frozenset({"avro_too_deep"}),
    )
    yield Hostile(
        "bomb-named-chain-200",
        container({"avro.schema": json.dumps(_named_chain(200)).encode()}, [(1, b"")]),
        True,
        frozenset({"avro_too_deep"}),
    )
    # objectId: a field decode keeps (fastavro skips others by seeking, leniently)
    strings = {"type": "record", "name": "s", "fields": [{"name": "objectId", "type": "string"}]}
    yield Hostile(
        "bomb-string-2e60",
        container({"avro.schema": json.dumps(strings).encode()}, [(1, _zigzag(2**60) + b"x")]),
        True,
        MALFORMED,
    )
    meta = {"avro.schema": text, "padding": bytes(5 * MiB)}
    yield Hostile(
        "bomb-message-5MiB",
        container(meta, [(1, datum(schema, record))]),
        True,
        frozenset({"message_too_large"}),
    )


def _tiny_history(record: dict[str, Any], points: int) -> bytes:
    """An alert-like schema whose history points take 2 bytes each (both fields null)."""
    point = {
        "type": "record",
        "name": "prv_candidate",
        "fields": [
            {"name": "jd", "type": ["null", "double"]},
            {"name": "magpsf", "type": ["null", "float"]},
        ],
    }
    schema = {
        "type": "record",
        "name": "alert",
        "fields": [
            {"name": "objectId", "type": "string"},
            {"name": "prv_candidates", "type": {"type": "array", "items": point}},
        ],
    }
    body = _avro_bytes(str(record["objectId"]).encode()) + _zigzag(points)
    body += b"\x00\x00" * points + _zigzag(0)
    return container({"avro.schema": json.dumps(schema).encode()}, [(1, body)])


def _named_chain(length: int) -> dict[str, Any]:
    """A record whose fields define types r0..rN, each holding the previous one: the
    JSON stays shallow, the values nest ``length`` deep."""
    fields: list[dict[str, Any]] = [
        {"name": "f0", "type": {"type": "record", "name": "r0", "fields": []}}
    ]
    for i in range(1, length):
        fields.append(
            {
                "name": f"f{i}",
                "type": {
                    "type": "record",
                    "name": f"r{i}",
                    "fields": [{"name": "x", "type": f"r{i - 1}"}],
                },
            }
        )
    return {"type": "record", "name": "chain", "fields": fields}


# -- FITS stamps ----------------------------------------------------------------------


@dataclass(frozen=True)
class FitsVariant:
    """A FITS file made from a real stamp; ``image`` is what astropy reads from it (None
    when it is broken: then ``reasons`` are the codes it must get)."""

    name: str
    fits: bytes
    image: np.ndarray | None
    reasons: frozenset[str] = frozenset()


def _cards(*cards: str) -> bytes:
    return b"".join(c.ljust(80).encode() for c in cards)


def _edit_header(raw: bytes, edit: Callable[[list[bytes]], list[bytes]]) -> bytes:
    """``raw`` with its primary header's cards edited (the header re-padded)."""
    end = next(i for i in range(0, len(raw), 80) if raw[i : i + 80].startswith(b"END     "))
    data_at = -(-(end + 80) // 2880) * 2880
    cards = [raw[i : i + 80] for i in range(0, end, 80)]
    header = b"".join(edit(cards)) + b"END".ljust(80)
    header += b" " * (-len(header) % 2880)
    return header + raw[data_at:]


def _write(*hdus: Any) -> bytes:
    buf = io.BytesIO()
    fits.HDUList(list(hdus)).writeto(buf)
    return buf.getvalue()


def _read(data: bytes) -> np.ndarray:
    """What astropy reads: the first HDU holding an image."""
    with fits.open(io.BytesIO(data), memmap=False) as hdul:
        hdu = hdul[0] if hdul[0].data is not None else hdul[1]
        return np.array(hdu.data, dtype=np.float32)


def fits_variants(raw: bytes) -> list[FitsVariant]:
    """Odd but valid FITS files (several need astropy), and broken ones, from one real
    stamp's FITS bytes."""
    image = _read(raw)
    finite = np.nan_to_num(image)
    valid: list[tuple[str, bytes]] = []

    def scaled(kind: str) -> bytes:
        hdu = fits.PrimaryHDU(finite.copy())
        with np.errstate(invalid="ignore", over="ignore"):
            hdu.scale(kind, "minmax")
        return _write(hdu)

    d_exponent = _edit_header(
        raw,
        lambda c: [*c, _cards("BSCALE  =              1.0D+00", "BZERO   =              0.0D+00")],
    )
    valid.append(("fits-d-exponent", d_exponent))
    valid.append(
        (
            "fits-bscale-2",
            _edit_header(raw, lambda c: [*c, _cards("BSCALE  =                  2.0")]),
        )
    )
    for kind in ("uint8", "int16", "int32"):
        valid.append((f"fits-bitpix-{kind}-scaled", scaled(kind)))
    valid.append(
        ("fits-bitpix-int64", _write(fits.PrimaryHDU(np.round(finite * 1000).astype(np.int64))))
    )
    valid.append(("fits-bitpix-float64", _write(fits.PrimaryHDU(image.astype(np.float64)))))
    valid.append(("fits-extension", _write(fits.PrimaryHDU(), fits.ImageHDU(image))))
    valid.append(("fits-small-50x40", _write(fits.PrimaryHDU(image[:50, :40].copy()))))
    blank = fits.PrimaryHDU(np.where(np.isnan(image), -32768, np.round(finite)).astype(np.int16))
    blank.header["BLANK"] = -32768
    blank.header["BZERO"] = 0.5
    valid.append(("fits-int16-blank", _write(blank)))
    variants = [FitsVariant(name, data, _read(data)) for name, data in valid]

    def card(keyword: str, value: str) -> Callable[[list[bytes]], list[bytes]]:
        line = f"{keyword:<8}= {value:>20}".encode().ljust(80)
        return lambda cards: [line if c.startswith(keyword.encode().ljust(8)) else c for c in cards]

    shape = frozenset({"cutout_shape"})
    corrupt = frozenset({"cutout_corrupt"})
    broken = [
        ("fits-naxis-negative", _edit_header(raw, card("NAXIS1", "-63")), shape),
        ("fits-naxis-huge", _edit_header(raw, card("NAXIS2", "1000000000")), shape),
        ("fits-naxis3", _write(fits.PrimaryHDU(image[np.newaxis])), shape),
        ("fits-64x63", _write(fits.PrimaryHDU(np.ones((64, 63), np.float32))), shape),
        ("fits-no-end", raw.replace(b"END".ljust(80), b" " * 80), corrupt),
        ("fits-short-data", raw[: len(raw) - 2880], corrupt),
        ("fits-bitpix-7", _edit_header(raw, card("BITPIX", "7")), corrupt),
        (
            "fits-bintable",
            _write(
                fits.PrimaryHDU(),
                fits.BinTableHDU.from_columns([fits.Column("a", "E", array=np.ones(3))]),
            ),
            corrupt,
        ),
        ("fits-all-nan", _write(fits.PrimaryHDU(np.full((63, 63), np.nan, np.float32))), corrupt),
        ("fits-not-fits", bytes(range(256)) * 40, corrupt),
        (
            "fits-header-2MiB",
            _edit_header(raw, lambda c: [*c, _cards("COMMENT x") * (2 * MiB // 80)]),
            frozenset({"cutout_too_large"}),
        ),
    ]
    variants += [FitsVariant(name, data, None, reasons) for name, data, reasons in broken]
    return variants


def gzip_fits(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    return packer.compress(data) + packer.flush()


def fits_cases(real: bytes, tag: str) -> Iterator[Hostile]:
    """The alert with its science stamp replaced by each FITS variant."""
    schema, record = parts(real)
    raw = zlib.decompress(record["cutoutScience"]["stampData"], 31)
    for variant in fits_variants(raw):
        message = alert_message(schema, _with_stamps(record, gzip_fits(variant.fits), STAMPS[:1]))
        broken = variant.image is None
        yield Hostile(f"{variant.name}:{tag}", message, broken, variant.reasons, not broken)


# -- records --------------------------------------------------------------------------


def _record_type(schema: Any, short: str) -> dict[str, Any]:
    """The record definition named ``short`` (namespace aside) inside ``schema``."""
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if (
                node.get("type") == "record"
                and str(node.get("name", "")).rsplit(".", 1)[-1] == short
            ):
                return node
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    raise KeyError(short)


def _field(record_type: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in record_type["fields"] if f["name"] == name)


def _retype(record_type: dict[str, Any], name: str, new: Any) -> None:
    field = _field(record_type, name)
    field["type"] = new
    field.pop("default", None)  # the old default may not fit the new type


def record_cases(real: bytes, tag: str) -> Iterator[Hostile]:
    """History and metadata oddities: null, NaN, inf, wrong types, each one alert."""
    base_schema, base = parts(real)

    def case(
        name: str,
        edit: Callable[[Any, dict[str, Any]], None],
        reasons: frozenset[str] | None = FIELD_INVALID,
    ) -> Hostile:
        schema, record = copy.deepcopy(base_schema), copy.deepcopy(base)
        edit(schema, record)
        message = alert_message(schema, record)
        rejected = reasons is not None
        return Hostile(f"record-{name}:{tag}", message, rejected, reasons or ANY, not rejected)

    def candidate(field: str, value: Any) -> Callable[[Any, dict[str, Any]], None]:
        return lambda schema, record: record["candidate"].__setitem__(field, value)

    def retype(short: str, field: str, new: Any) -> Callable[[Any, dict[str, Any]], None]:
        return lambda schema, record: _field(_record_type(schema, short), field).__setitem__(
            "type", new
        )

    yield case("sgscore1-nan", candidate("sgscore1", float("nan")))
    yield case("distpsnr1-inf", candidate("distpsnr1", float("inf")))
    yield case("jdstarthist-nan", candidate("jdstarthist", float("nan")))
    yield case("jd-1e300", candidate("jd", 1e300))  # finite, but the features overflow float32

    def objectid_long(schema: Any, record: dict[str, Any]) -> None:
        _retype(schema, "objectId", "long")
        record["objectId"] = 12345

    def candidate_string(schema: Any, record: dict[str, Any]) -> None:
        _retype(schema, "candidate", "string")
        record["candidate"] = "not a record"

    def candidate_null(schema: Any, record: dict[str, Any]) -> None:
        field = _field(schema, "candidate")
        field["type"], field["default"] = ["null", field["type"]], None
        record["candidate"] = None

    def stampdata_string(schema: Any, record: dict[str, Any]) -> None:
        _retype(_record_type(schema, "cutout"), "stampData", "string")
        for key in STAMPS:
            record[key] = {**record[key], "stampData": "not bytes"}

    def cutout_int(schema: Any, record: dict[str, Any]) -> None:
        _retype(schema, STAMPS[-1], "int")  # the last refers to the type by name
        record[STAMPS[-1]] = 7

    def candid_string(schema: Any, record: dict[str, Any]) -> None:
        _retype(schema, "candid", "string")
        record["candid"] = "not a number"

    def magpsf_string(schema: Any, record: dict[str, Any]) -> None:
        retype("candidate", "magpsf", "string")(schema, record)
        record["candidate"]["magpsf"] = "bright"

    yield case("objectid-long", objectid_long)
    yield case("candidate-string", candidate_string)
    yield case("candidate-null", candidate_null, frozenset({"missing_field"}))
    yield case("stampdata-string", stampdata_string)
    yield case("cutout-int", cutout_int)
    yield case("candid-string", candid_string, None)  # must be scored: candid is only echoed
    yield case("magpsf-string", magpsf_string)
    yield from _history_cases(case, tag)


def _history_cases(case: Callable[..., Hostile], tag: str) -> Iterator[Hostile]:
    def point(record: dict[str, Any], **values: Any) -> dict[str, Any]:
        history = record.get("prv_candidates") or []
        if not history:
            raise LookupError("no history")
        new = {**history[0], **values}
        record["prv_candidates"] = [*history, new]
        return new

    def jd_null(schema: Any, record: dict[str, Any]) -> None:
        _retype(_record_type(schema, "prv_candidate"), "jd", ["null", "double"])
        point(record, jd=None, magpsf=18.5)

    def jd_missing(schema: Any, record: dict[str, Any]) -> None:
        prv = _record_type(schema, "prv_candidate")
        prv["fields"] = [f for f in prv["fields"] if f["name"] != "jd"]
        point(record, magpsf=18.5)

    def magpsf_string(schema: Any, record: dict[str, Any]) -> None:
        _retype(_record_type(schema, "prv_candidate"), "magpsf", ["null", "string"])
        for p in record.get("prv_candidates") or []:
            p["magpsf"] = None if p.get("magpsf") is None else str(p["magpsf"])
        point(record, magpsf="19.1")

    def magpsf_nan(schema: Any, record: dict[str, Any]) -> None:
        point(record, magpsf=float("nan"))

    def null_point(schema: Any, record: dict[str, Any]) -> None:
        array = next(t for t in _field(schema, "prv_candidates")["type"] if isinstance(t, dict))
        array["items"] = ["null", array["items"]]
        point(record)
        record["prv_candidates"].append(None)

    for name, edit in [
        ("history-jd-null", jd_null),
        ("history-jd-missing", jd_missing),
        ("history-magpsf-string", magpsf_string),
        ("history-magpsf-nan", magpsf_nan),
        ("history-null-point", null_point),
    ]:
        try:
            yield case(name, edit)
        except LookupError:  # this alert has no history to damage
            continue
