"""``btsbot-stream watch``: subscribe to the scored alerts (and candidate events)."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from btsbot_stream.cli.follow_options import Connection, connection_options
from btsbot_stream.cli.options import setting_option
from btsbot_stream.config import WatchSettings

if TYPE_CHECKING:
    from btsbot_stream.follow.display import LiveTable
    from btsbot_stream.follow.watch import Watcher

_WATCH = WatchSettings()


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: use ISO 8601, e.g. 2026-11-30T00:00Z") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _min_scores(values: tuple[str, ...]) -> dict[str, float]:
    from btsbot_stream.follow.filters import ANY_MODEL

    out = {}
    for value in values:
        model, sep, number = value.rpartition("=")
        try:
            out[model if sep else ANY_MODEL] = float(number)
        except ValueError as exc:
            raise click.BadParameter(f"{value!r}: use 0.5 or MODEL=0.5") from exc
    return out


@click.command()
@connection_options
@setting_option(
    "watch",
    _WATCH,
    "stream",
    type=click.Choice(["scored", "candidates", "both"]),
    help="Scored alerts, the decision stage's candidate events, or both.",
)
@setting_option(
    "watch", _WATCH, "group_id", help="Your own consumer group: a restart resumes where it stopped."
)
@setting_option(
    "watch",
    _WATCH,
    "start",
    type=click.Choice(["earliest", "latest"]),
    help="Where a new group begins (a known group resumes from its commits).",
)
@click.option(
    "--since",
    envvar="BTSBOT_WATCH_SINCE",
    show_envvar=True,
    help="Begin at this publication time instead (ISO 8601, UTC if no zone), "
    "e.g. 2026-11-30T00:00Z.",
)
@click.option(
    "--min-score",
    multiple=True,
    metavar="[MODEL=]P",
    envvar="BTSBOT_WATCH_MIN_SCORE",
    show_envvar=True,
    help="Keep scores >= P; bare P: every model. Repeatable.",
)
@click.option(
    "--mag-min",
    type=float,
    envvar="BTSBOT_WATCH_MAG_MIN",
    show_envvar=True,
    help="Brightest magpsf kept.",
)
@click.option(
    "--mag-max",
    type=float,
    envvar="BTSBOT_WATCH_MAG_MAX",
    show_envvar=True,
    help="Faintest magpsf kept (e.g. 18.5 for BTS).",
)
@click.option(
    "--band",
    multiple=True,
    type=click.Choice(["g", "r", "i"]),
    envvar="BTSBOT_WATCH_BAND",
    show_envvar=True,
    help="ZTF filter; repeatable.",
)
@click.option(
    "--cone",
    type=(float, float, float),
    metavar="RA DEC RADIUS",
    envvar="BTSBOT_WATCH_CONE",
    show_envvar=True,
    help="Degrees, degrees, arcseconds.",
)
@click.option(
    "--policy",
    multiple=True,
    envvar="BTSBOT_WATCH_POLICY",
    show_envvar=True,
    help="Candidate events of this policy only (e.g. bts_p2); repeatable.",
)
@click.option(
    "--save",
    "save_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="BTSBOT_WATCH_SAVE",
    show_envvar=True,
    help="Write each alert (Avro), its cutouts (FITS, PNG) and a scores.csv row; offsets "
    "commit only after.",
)
@setting_option(
    "watch",
    _WATCH,
    "dedup_memory",
    type=click.IntRange(min=1),
    help="Candids remembered to drop repeats.",
)
@click.option(
    "--output",
    type=click.Choice(["auto", "table", "json"]),
    default="auto",
    show_default=True,
    envvar="BTSBOT_WATCH_OUTPUT",
    show_envvar=True,
    help="auto: a live table on a terminal, JSON lines otherwise.",
)
@click.option(
    "--exit-when-idle",
    type=click.FloatRange(min=0),
    envvar="BTSBOT_WATCH_EXIT_WHEN_IDLE",
    show_envvar=True,
    help="Stop after this many seconds without a message.",
)
def watch(
    connection: Connection,
    stream: str,
    group_id: str,
    start: str,
    since: str | None,
    min_score: tuple[str, ...],
    mag_min: float | None,
    mag_max: float | None,
    band: tuple[str, ...],
    cone: tuple[float, float, float] | None,
    policy: tuple[str, ...],
    save_dir: Path | None,
    dedup_memory: int,
    output: str,
    exit_when_idle: float | None,
) -> None:
    """Follow the scored alerts: filter, drop repeats, show, and optionally save them.

    Score filters use the Kafka headers, so rejected alerts are never decoded. Ctrl-C
    or SIGTERM stops cleanly and commits what was handled.
    """
    from btsbot_stream.follow.dedup import RecentKeys
    from btsbot_stream.follow.display import LiveTable, json_line
    from btsbot_stream.follow.filters import BAND_IDS, Cone, Filters
    from btsbot_stream.follow.save import Saver
    from btsbot_stream.follow.watch import Watcher, WatchPlan

    filters = Filters(
        min_scores=_min_scores(min_score),
        mag_min=mag_min,
        mag_max=mag_max,
        bands=frozenset(BAND_IDS[b] for b in band),
        cone=Cone(*cone) if cone else None,
        policies=frozenset(policy),
    )
    topics: dict[str, str] = {}
    if stream in ("scored", "both"):
        topics[connection.scored_topic] = "alert"
    if stream in ("candidates", "both"):
        topics[connection.candidates_topic] = "candidate"
    plan = WatchPlan(
        connection.bootstrap,
        connection.properties,
        group_id,
        topics,  # type: ignore[arg-type]
        start,
        _since(since),
        _WATCH.commit_interval_ms,
    )
    saver = Saver(save_dir) if save_dir else None
    memory = RecentKeys(dedup_memory, saver.saved_keys() if saver else ())
    table_mode = output == "table" or (output == "auto" and sys.stdout.isatty())
    table = LiveTable() if table_mode else None
    stopping = False

    def stop(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    on_item = table.add if table is not None else json_line(sys.stdout)
    watcher = Watcher(plan, filters, memory, on_item, saver)
    try:
        watcher.start()
        if table is None:
            watcher.run(lambda: stopping, exit_when_idle)
        else:
            _run_live(watcher, table, lambda: stopping, exit_when_idle)
    finally:
        watcher.close()
    c = watcher.counts
    click.echo(
        f"read {c.read}, shown {c.passed}, filtered {c.filtered}, repeats {c.repeats}, "
        f"undecodable {c.undecodable}",
        err=True,
    )


def _run_live(
    watcher: Watcher, table: LiveTable, stopping: Callable[[], bool], idle: float | None
) -> None:
    """The watch loop under a rich Live display, refreshed twice a second."""
    from rich.live import Live

    from btsbot_stream.follow.kafka import lag_by_partition

    shown_at = 0.0
    with Live(auto_refresh=False) as live:

        def stop_or_refresh() -> bool:
            nonlocal shown_at
            if time.monotonic() - shown_at > 0.5:
                lag = lag_by_partition(watcher.consumer)
                live.update(table.render(watcher.counts, lag, watcher.last_problem))
                live.refresh()
                shown_at = time.monotonic()
            return stopping()

        watcher.run(stop_or_refresh, idle)
    live.console.print()  # end the table's last line before the summary
