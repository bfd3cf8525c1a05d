"""History and metadata oddities for the hostile generator (see :mod:`hostile`): a real
alert re-encoded with one field null, NaN, infinite or of the wrong type (its schema
changed to allow it where needed)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from hostile_payloads import ANY, STAMPS, Hostile, alert_message, parts

FIELD_INVALID = frozenset({"field_invalid"})


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
    found = [f for f in record_type["fields"] if f["name"] == name]
    if not found:
        raise LookupError(f"no field {name!r}")
    return found[0]


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
        kind = _field(schema, "prv_candidates")["type"]
        arrays = [t for t in (kind if isinstance(kind, list) else [kind]) if isinstance(t, dict)]
        if not arrays:  # e.g. the array type is a reference to a named type
            raise LookupError("prv_candidates is not an inline array")
        array = arrays[0]
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
