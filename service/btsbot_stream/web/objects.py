"""One object's page data: its scored alerts, the chosen alert read again from Kafka,
the light curve, the cutouts. Decoded alerts and rendered images are cached (LRU)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import quote

from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.follow.alert_view import PAGE, AlertReader
from btsbot_stream.follow.exceptions import FollowError
from btsbot_stream.render.cutouts import STAMP_FIELDS, CutoutKind, cutout_png
from btsbot_stream.render.lightcurve import LightCurve, ScoredDetection, light_curve
from btsbot_stream.render.plots import light_curve_png
from btsbot_stream.web.window import AlertRow, EventRow, Window


class Fetcher(Protocol):
    def get(self, topic: str, partition: int, offset: int) -> bytes: ...


@dataclass
class ObjectView:
    object_id: str
    rows: list[AlertRow]  # every scored alert of the object in the window, by jd
    selected: AlertRow  # whose cutouts are shown (default: the latest)
    record: dict[str, Any] | None  # the selected alert, decoded (None: see error)
    curve: LightCurve
    events: list[EventRow] = field(default_factory=list)
    error: str | None = None

    @property
    def candidate(self) -> dict[str, Any]:
        return (self.record or {}).get("candidate") or {}


def links(object_id: str, ra: float | None, dec: float | None) -> dict[str, str]:
    """The object on the public brokers and the Transient Name Server."""
    oid = quote(object_id, safe="")
    out = {
        "ALeRCE": f"https://alerce.online/object/{oid}",
        "Fink": f"https://fink-portal.org/{oid}",
        "Lasair": f"https://lasair-ztf.lsst.ac.uk/objects/{oid}/",
    }
    if ra is not None and dec is not None:
        out["TNS"] = (
            f"https://www.wis-tns.org/search?ra={ra:.6f}&decl={dec:.6f}&radius=5&coords_unit=arcsec"
        )
        out["Legacy Survey"] = (
            f"https://www.legacysurvey.org/viewer?ra={ra:.6f}&dec={dec:.6f}&layer=ls-dr10&zoom=16"
        )
    return out


def scored_detections(rows: list[AlertRow]) -> list[ScoredDetection]:
    return [
        ScoredDetection(r.candid, r.jd, r.fid, r.magpsf, r.sigmapsf, r.scores)
        for r in rows
        if r.jd is not None and r.fid is not None
    ]


class ObjectPages:
    def __init__(self, window: Window, fetcher: Fetcher, cache_size: int = 256) -> None:
        self.window = window
        self.fetcher = fetcher
        self._reader = AlertReader(PAGE)
        # Keyed by where the message is (topic, partition, offset): immutable in Kafka.
        self._load: Callable[[str, int, int], dict[str, Any]] = lru_cache(maxsize=cache_size)(
            lambda t, p, o: self._reader.read(self.fetcher.get(t, p, o))
        )
        self._cutout = lru_cache(maxsize=3 * cache_size)(self._render_cutout)
        self._plot = lru_cache(maxsize=cache_size)(self._render_plot)

    def record(self, row: AlertRow) -> dict[str, Any]:
        """The alert of ``row``, decoded for a page (history, stamps); raises
        FollowError (fetch) or InvalidAlert (decode)."""
        return self._load(row.topic, row.partition, row.offset)

    def view(self, object_id: str, candid: int | None = None) -> ObjectView | None:
        rows = sorted(self.window.object_alerts(object_id), key=lambda r: (r.jd or 0, r.candid))
        if not rows:
            return None
        chosen = [r for r in rows if r.candid == candid] if candid is not None else []
        selected = chosen[0] if chosen else rows[-1]
        record, error = None, None
        try:
            record = self.record(selected)
        except (FollowError, InvalidAlert) as exc:
            error = str(exc)
        latest = record if selected is rows[-1] else self._quiet_record(rows[-1])
        curve = light_curve(latest, scored_detections(rows))
        return ObjectView(
            object_id, rows, selected, record, curve, self.window.object_events(object_id), error
        )

    def _quiet_record(self, row: AlertRow) -> dict[str, Any] | None:
        try:
            return self.record(row)
        except (FollowError, InvalidAlert):
            return None

    def _render_cutout(self, where: tuple[str, int, int], kind: CutoutKind) -> bytes:
        stamp = (self._load(*where).get(STAMP_FIELDS[kind]) or {}).get("stampData")
        if not stamp:
            raise InvalidAlert("cutout_missing", f"{STAMP_FIELDS[kind]} is empty")
        return cutout_png(stamp, kind)

    def cutout(self, object_id: str, candid: int, kind: CutoutKind) -> bytes | None:
        """PNG of one cutout; None when the alert is not in the window for that object.
        Raises FollowError/InvalidAlert when it cannot be read or drawn."""
        row = self.window.alert(candid)
        if row is None or row.object_id != object_id:
            return None
        return self._cutout((row.topic, row.partition, row.offset), kind)

    def _render_plot(self, object_id: str, candids: tuple[int, ...]) -> bytes:
        view = self.view(object_id)
        return light_curve_png(view.curve, object_id) if view else b""

    def light_curve_png(self, object_id: str) -> bytes | None:
        rows = self.window.object_alerts(object_id)
        if not rows:
            return None
        return self._plot(object_id, tuple(r.candid for r in rows))
