"""``btsbot-stream score``: score alert files, one JSON line per alert."""

from __future__ import annotations

import collections
import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.registry import make_registry
from btsbot_stream.alerts.sources import expand, read_items
from btsbot_stream.background import prefetch
from btsbot_stream.cli import options
from btsbot_stream.config import EngineSettings, LimitSettings
from btsbot_stream.scoring import Outcome, PreparedMessage, load_scorer, prepare_message

Chunk = list[tuple[str, PreparedMessage]]


def prepared_chunks(
    files: list[Path], decoder: AlertDecoder, size: int, progress: Progress | None
) -> Iterator[Chunk]:
    """Messages of ``files`` decoded and prepared, ``size`` at a time: one entry per
    packet, or per file or archive that could not be read."""
    task = progress.add_task("scoring", total=len(files)) if progress else None
    chunk: Chunk = []
    for path in files:
        for item in read_items([path], decoder.limits.max_message_bytes):
            if item.failure is not None:
                chunk.append((item.origin, PreparedMessage([], item.failure)))
            else:
                chunk.append((item.origin, prepare_message(decoder, item.data)))
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if progress is not None and task is not None:
            progress.advance(task)
    if chunk:
        yield chunk


def outcome_line(origin: str, outcome: Outcome) -> dict[str, Any]:
    line: dict[str, Any] = {"objectId": outcome.object_id, "candid": outcome.candid}
    if outcome.reject is None:
        line["scores"] = outcome.scores
    else:
        line["error"] = outcome.reject.reason
        line["detail"] = outcome.reject.detail
    line["file"] = origin
    return line


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@options.engine_options
@options.schema_dir
@options.schema_registry
@options.limit_options
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="JSON-lines output file ('-' for standard output).",
)
def score(
    paths: tuple[Path, ...],
    engine: EngineSettings,
    schema_dir: Path | None,
    schema_registry: str | None,
    limits: LimitSettings,
    out_path: Path,
) -> None:
    """Score alert packets (.avro files, folders, nightly .tar.gz archives).

    Writes one JSON line per alert, {"objectId", "candid", "scores": {model: p}, "file"},
    or, for anything that cannot be scored, {"error": reason, "detail", "file", and the
    objectId/candid when known}: one line per packet whatever it holds, one per file or
    archive that cannot be read. Exits 0 when every input was gone through, even with
    per-alert errors; 1 on configuration or model problems.
    """
    scorer = load_scorer(engine)
    decoder = AlertDecoder(make_registry(schema_dir, schema_registry), limits)
    files = expand(paths)
    counts: collections.Counter[str] = collections.Counter()
    with ExitStack() as stack:
        out: IO[str] = (
            sys.stdout if str(out_path) == "-" else stack.enter_context(out_path.open("w"))
        )
        progress = None
        if sys.stderr.isatty():
            progress = stack.enter_context(
                Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=Console(stderr=True),
                )
            )
        for chunk in prefetch(prepared_chunks(files, decoder, engine.batch_size, progress)):
            results = scorer.score([message for _, message in chunk])
            for (origin, _), outcomes in zip(chunk, results, strict=True):
                for outcome in outcomes:
                    counts[outcome.reject.reason if outcome.reject else "scored"] += 1
                    out.write(json.dumps(outcome_line(origin, outcome)) + "\n")
    summary = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    click.echo(f"{sum(counts.values())} alerts from {len(files)} files: {summary}", err=True)
