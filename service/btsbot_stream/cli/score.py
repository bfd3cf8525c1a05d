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

from btsbot_stream.alerts.sources import SourceItem, expand, read_items
from btsbot_stream.cli import options
from btsbot_stream.config import EngineSettings, LimitSettings, PreparationSettings
from btsbot_stream.scoring import Outcome, PreparedMessage, Scorer, load_scorer
from btsbot_stream.workers import Decoding, Preparer, make_preparer, prepare_ahead
from btsbot_stream.workers.cores import resolve_processes

Scored = list[tuple[str, list[Outcome]]]


def read_chunks(
    files: list[Path], max_bytes: int, size: int, progress: Progress | None
) -> Iterator[list[SourceItem]]:
    """The messages of ``files``, ``size`` at a time: one item per packet, or per file
    or archive that could not be read."""
    task = progress.add_task("scoring", total=len(files)) if progress else None
    chunk: list[SourceItem] = []
    for path in files:
        for item in read_items([path], max_bytes):
            chunk.append(item)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if progress is not None and task is not None:
            progress.advance(task)
    if chunk:
        yield chunk


def scored_chunks(
    chunks: Iterator[list[SourceItem]], preparer: Preparer, scorer: Scorer
) -> Iterator[Scored]:
    """Each chunk prepared (the next one while this one is scored) and scored: (origin,
    outcomes) per item, in order. Raises ``RegistryUnavailable`` if the registry is away."""

    def readable(chunk: list[SourceItem]) -> list[bytes]:
        return [item.data for item in chunk if item.failure is None]

    for chunk, batch in prepare_ahead(preparer, chunks, readable, ahead=1):
        try:
            prepared = iter(batch.messages)
            messages = [
                PreparedMessage([], item.failure) if item.failure is not None else next(prepared)
                for item in chunk
            ]
            results = scorer.score(messages)
        finally:
            batch.release()
        yield [(item.origin, outcomes) for item, outcomes in zip(chunk, results, strict=True)]


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
@options.preparation_options
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
    preparation: PreparationSettings,
    out_path: Path,
) -> None:
    """Score alert packets (.avro files, folders, nightly .tar.gz archives).

    Writes one JSON line per alert, {"objectId", "candid", "scores": {model: p}, "file"},
    or, for anything that cannot be scored, {"error": reason, "detail", "file", and the
    objectId/candid when known}: one line per packet whatever it holds, one per file or
    archive that cannot be read. Exits 0 when every input was gone through, even with
    per-alert errors; 1 on configuration or model problems.
    """
    scorer = load_scorer(engine, spinning=resolve_processes(preparation, engine) == 0)
    decoding = Decoding(limits, schema_dir, schema_registry)
    files = expand(paths)
    counts: collections.Counter[str] = collections.Counter()
    with ExitStack() as stack:
        preparer = make_preparer(preparation, engine, decoding)
        stack.callback(preparer.close)
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
        chunks = read_chunks(files, limits.max_message_bytes, engine.batch_size, progress)
        for scored in scored_chunks(chunks, preparer, scorer):
            for origin, outcomes in scored:
                for outcome in outcomes:
                    counts[outcome.reject.reason if outcome.reject else "scored"] += 1
                    out.write(json.dumps(outcome_line(origin, outcome)) + "\n")
    summary = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    click.echo(f"{sum(counts.values())} alerts from {len(files)} files: {summary}", err=True)
