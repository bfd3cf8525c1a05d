"""How ``watch`` shows what passes: a live table on a terminal, JSON lines otherwise."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from typing import IO

from rich.console import Group
from rich.table import Table
from rich.text import Text

from btsbot_stream.follow.items import FollowItem, jd_to_datetime
from btsbot_stream.follow.watch import Counts


def json_line(out: IO[str]) -> Callable[[FollowItem], None]:
    """One JSON object per passing item, flushed (pipe it into jq or a script)."""

    def write(item: FollowItem) -> None:
        out.write(json.dumps(item.as_json()) + "\n")
        out.flush()

    return write


def _fmt(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


class LiveTable:
    """The last ``rows`` passing items, newest first, with lag and counts below."""

    def __init__(self, rows: int = 25) -> None:
        self.items: deque[FollowItem] = deque(maxlen=rows)

    def add(self, item: FollowItem) -> None:
        self.items.appendleft(item)

    def render(
        self, counts: Counts, lag: Mapping[tuple[str, int], int], problem: str | None
    ) -> Group:
        models = sorted({m for item in self.items for m in item.scores})
        policies = any(item.policy for item in self.items)
        table = Table(title="btsbot-stream watch", expand=False, header_style="bold")
        for column in ("objectId", "candid", "time (UTC)", "band", "mag", "RA", "Dec"):
            table.add_column(column, justify="right" if column == "mag" else "left", no_wrap=True)
        for model in models:
            table.add_column(model, justify="right", no_wrap=True)
        if policies:
            table.add_column("policy", no_wrap=True)
        for item in self.items:
            when = jd_to_datetime(item.jd).strftime("%Y-%m-%d %H:%M") if item.jd else ""
            table.add_row(
                item.object_id or "?",
                str(item.candid or ""),
                when,
                item.band or "",
                _fmt(item.magpsf, 2),
                _fmt(item.ra, 5),
                _fmt(item.dec, 5),
                *(_fmt(item.scores.get(m), 3) for m in models),
                *([item.policy or ""] if policies else []),
            )
        lag_text = ", ".join(f"{t}[{p}] {n}" for (t, p), n in sorted(lag.items())) or "-"
        status = Text(
            f"read {counts.read}  shown {counts.passed}  filtered {counts.filtered}  "
            f"repeats {counts.repeats}  undecodable {counts.undecodable}   lag: {lag_text}"
        )
        parts: list[Table | Text] = [table, status]
        if problem:
            parts.append(Text(f"broker: {problem}", style="yellow"))
        return Group(*parts)
