"""What the stage remembers per object: its scored alerts in jd order and the policies
that have fired. Stored as JSON-compatible values (the state store serialises them)."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from btsbot_stream.decisions.alerts import ScoredAlert
from btsbot_stream.decisions.exceptions import StateFormatError

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class FiredPolicy:
    """Where a policy fired: the triggering alert, and whether it fired on a late one."""

    candid: int
    jd: float
    magpsf: float
    late: bool

    def to_json(self) -> list[Any]:
        return [self.candid, self.jd, self.magpsf, self.late]


@dataclass
class ObjectState:
    """One object's history (alerts sorted by jd, then candid) and its fired policies."""

    alerts: list[ScoredAlert] = field(default_factory=list)
    fired: dict[str, FiredPolicy] = field(default_factory=dict)
    _candids: set[int] = field(default_factory=set, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._candids = {a.candid for a in self.alerts}

    @property
    def last_jd(self) -> float:
        return self.alerts[-1].jd if self.alerts else float("-inf")

    def has(self, candid: int) -> bool:
        return candid in self._candids

    def insert(self, alert: ScoredAlert) -> int:
        """Add ``alert`` in jd order; returns its index."""
        index = bisect_right(self.alerts, alert.order, key=lambda a: a.order)
        self.alerts.insert(index, alert)
        self._candids.add(alert.candid)
        return index

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "alerts": [a.to_row() for a in self.alerts],
            "fired": {name: f.to_json() for name, f in self.fired.items()},
        }

    @classmethod
    def from_json(cls, data: Any) -> ObjectState:
        if not isinstance(data, dict) or data.get("v") != STATE_VERSION:
            raise StateFormatError(
                f"object state of an unknown layout (expected v={STATE_VERSION}): {str(data)[:120]}"
            )
        try:
            alerts = [ScoredAlert.from_row(row) for row in data["alerts"]]
            fired = {
                name: FiredPolicy(int(c), float(jd), float(mag), bool(late))
                for name, (c, jd, mag, late) in data["fired"].items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise StateFormatError(f"object state does not parse: {exc!r}") from exc
        return cls(alerts, fired)
