"""Real alerts as model inputs, split into calibration and held-out sets by object.

Alerts are decoded and prepared by the service's own code (:mod:`btsbot_stream.alerts`),
so a variant is calibrated and judged on exactly what it will score. Those that cannot
be scored (JPEG prototypes, stripped stamps) are counted and left out.

The split puts an alert in the calibration set when the first 16 hex digits of
``sha256(objectId)``, read as a fraction of 2**64, are below the calibration share: it
depends on nothing but the objectId, so every alert of one object lands on the same side
and anyone can recompute it.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.alerts.prepare import Prepared, identity, prepare
from btsbot_stream.alerts.sources import expand, read_items
from btsbot_stream.quantize.exceptions import DatasetError
from btsbot_stream.quantize.report import AlertSetRecord

SPLIT_RULE = "sha256(objectId)[:16 hex] / 2**64 < {share}: calibration, else held out"
CALIBRATION_SHARE = 0.5  # of the objects, when no held-out set is given


@dataclass(frozen=True)
class AlertSet:
    """Prepared alerts, in the order read.

    Attributes
    ----------
    triplets : numpy.ndarray
        (N, 63, 63, 3) float32, NHWC.
    metadata : numpy.ndarray
        (N, 25) float32.
    object_ids, candids : tuple
        Each alert's identity.
    sources : tuple of str
        The paths the alerts were read from, as given.
    unscorable : int
        Packets read but not scorable (counted, left out).
    """

    triplets: np.ndarray
    metadata: np.ndarray
    object_ids: tuple[str, ...]
    candids: tuple[int, ...]
    sources: tuple[str, ...]
    unscorable: int = 0

    def __len__(self) -> int:
        return len(self.candids)

    @property
    def objects(self) -> int:
        return len(set(self.object_ids))

    def candids_sha256(self) -> str:
        text = "".join(f"{c}\n" for c in sorted(self.candids))
        return hashlib.sha256(text.encode()).hexdigest()

    def inputs_sha256(self) -> str:
        digest = hashlib.sha256(np.ascontiguousarray(self.triplets).tobytes())
        digest.update(np.ascontiguousarray(self.metadata).tobytes())
        return digest.hexdigest()

    def subset(self, keep: Sequence[bool] | np.ndarray) -> AlertSet:
        mask = np.asarray(keep, dtype=bool)
        return AlertSet(
            self.triplets[mask],
            self.metadata[mask],
            tuple(o for o, k in zip(self.object_ids, mask, strict=True) if k),
            tuple(c for c, k in zip(self.candids, mask, strict=True) if k),
            self.sources,
            self.unscorable,
        )


def read_alerts(paths: Iterable[Path]) -> AlertSet:
    """Every scorable alert under ``paths`` (files, folders, nightly archives)."""
    paths = list(paths)
    decoder = AlertDecoder()
    triplets, metadata, object_ids, candids = [], [], [], []
    unscorable = 0
    for item in read_items(expand(paths)):
        try:
            alerts = decoder.decode(item.data) if item.failure is None else []
        except InvalidAlert:
            alerts = []
        unscorable += item.failure is not None or not alerts
        for alert in alerts:
            prepared = prepare(alert)
            object_id, candid = identity(alert)
            if not isinstance(prepared, Prepared) or object_id is None or candid is None:
                unscorable += 1
                continue
            triplets.append(prepared.triplet)
            metadata.append(prepared.metadata)
            object_ids.append(object_id)
            candids.append(candid)
    if not candids:
        raise DatasetError(f"no scorable alert in {', '.join(map(str, paths))}")
    return AlertSet(
        np.stack(triplets),
        np.stack(metadata),
        tuple(object_ids),
        tuple(candids),
        tuple(str(p) for p in paths),
        unscorable,
    )


def calibration_fraction(object_id: str) -> float:
    """Where an object falls in [0, 1) for the split (see the module's docstring)."""
    return int(hashlib.sha256(object_id.encode()).hexdigest()[:16], 16) / 2**64


def split_by_object(alerts: AlertSet, share: float) -> tuple[AlertSet, AlertSet]:
    """(calibration, held out): each object wholly on one side."""
    in_calibration = np.array([calibration_fraction(o) < share for o in alerts.object_ids])
    return alerts.subset(in_calibration), alerts.subset(~in_calibration)


def without_objects(alerts: AlertSet, objects: Iterable[str]) -> tuple[AlertSet, int]:
    """``alerts`` less those of ``objects`` (an explicit held-out set must not share an
    object with the calibration set), and how many were dropped."""
    seen = set(objects)
    keep = np.array([o not in seen for o in alerts.object_ids], dtype=bool)
    return alerts.subset(keep), int((~keep).sum())


def read_labels(path: Path) -> dict[int, int]:
    """candid -> 1 (real bright transient) or 0, from a CSV with a ``candid`` column.

    A ``label`` column (0/1) gives both classes; without one every listed alert is a
    positive (the corpus's ``LABELS.csv``: alerts of spectroscopically classified
    Bright Transient Survey objects).
    """
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        labels = {int(row["candid"]): int(row.get("label") or 1) for row in rows}
        if not set(labels.values()) <= {0, 1}:
            raise ValueError(f"labels other than 0 and 1: {sorted(set(labels.values()))}")
        return labels
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(
            f"cannot read labels from {path} (a CSV with a 'candid' column and an optional "
            f"0/1 'label' column): {type(exc).__name__}: {exc}"
        ) from exc


def alert_set_record(alerts: AlertSet, rule: str, dropped: int = 0) -> AlertSetRecord:
    return AlertSetRecord(
        alerts=len(alerts),
        objects=alerts.objects,
        unscorable_in_sources=alerts.unscorable,
        dropped_shared_objects=dropped,
        rule=rule,
        sources=alerts.sources,
        candids_sha256=alerts.candids_sha256(),
        inputs_sha256=alerts.inputs_sha256(),
        candids=alerts.candids,
    )


@dataclass(frozen=True)
class GateData:
    """The alerts a variant is made and judged with (see :mod:`.dataset`)."""

    calibration: AlertSet
    calibration_record: AlertSetRecord
    held_out: AlertSet
    held_out_record: AlertSetRecord
    labels: dict[int, int] | None = None
    labels_file: str | None = None


def gather(
    calibration: list[Path],
    held_out: list[Path],
    calibration_share: float,
    labels: Path | None = None,
) -> GateData:
    """Read and prepare the alerts; without an explicit held-out set, split the
    calibration alerts by object (:data:`~.dataset.SPLIT_RULE`)."""
    alerts = read_alerts(calibration)
    known = read_labels(labels) if labels else None
    if held_out:
        kept, dropped = without_objects(read_alerts(held_out), alerts.object_ids)
        rule = "an explicit held-out set; its alerts of calibration objects are left out"
        return GateData(
            alerts,
            alert_set_record(alerts, "every alert of the calibration sources"),
            kept,
            alert_set_record(kept, rule, dropped),
            known,
            str(labels) if labels else None,
        )
    cal, held = split_by_object(alerts, calibration_share)
    rule = SPLIT_RULE.format(share=calibration_share)
    return GateData(
        cal, alert_set_record(cal, rule), held, alert_set_record(held, rule), known,
        str(labels) if labels else None,
    )  # fmt: skip
