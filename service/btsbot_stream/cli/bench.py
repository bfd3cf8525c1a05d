"""``btsbot-stream bench``: alerts/s of one stage, measured the same way by anyone.

Inputs are read into memory first, so file I/O is not measured. Each figure is the
median of ``--repeat`` passes over all inputs. ``--processes N`` prepares in N worker
processes (``features``: batches of ``--batch-size`` through the pool; ``score``: the
same pool feeding the models), 0 in this process (``features``: one core, no thread).
``--baseline`` also measures the plain way (``fastavro.reader`` + astropy for
decode/features; one alert at a time through decode, preparation and the models for
score) on the same inputs, and the speed-up.
``score`` also reports the models' own batched throughput on prepared inputs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import click
import numpy as np

from btsbot_stream import __version__
from btsbot_stream.alerts import reference
from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.alerts.prepare import Prepared, stack
from btsbot_stream.alerts.sources import expand, read_items
from btsbot_stream.cli import options
from btsbot_stream.config import EngineSettings, PreparationSettings
from btsbot_stream.scoring import Scorer, load_scorer, prepare_message
from btsbot_stream.workers import Decoding, Preparer, make_preparer, prepare_ahead
from btsbot_stream.workers.cores import resolve_processes


def _rate(n: int, fn: Callable[[], object], repeat: int) -> float:
    """Median alerts/s of ``repeat`` timed calls of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


def _reference_features(blobs: list[bytes]) -> None:
    for data in blobs:
        try:
            for alert in reference.read_alerts(data):
                reference.triplet(alert)
                reference.metadata(alert)
        except Exception:  # the baseline only needs to time the good ones
            continue


def _chunks(blobs: list[bytes], batch: int) -> Iterator[list[bytes]]:
    for start in range(0, len(blobs), batch):
        yield blobs[start : start + batch]


def _prepare_all(blobs: list[bytes], preparer: Preparer, batch: int) -> None:
    for _, prepared in prepare_ahead(preparer, _chunks(blobs, batch), list, ahead=1):
        prepared.release()


def _end_to_end(blobs: list[bytes], scorer: Scorer, preparer: Preparer, batch: int) -> None:
    """``score``'s pipeline: the next batch prepared while this one is scored."""
    for _, prepared in prepare_ahead(preparer, _chunks(blobs, batch), list, ahead=1):
        try:
            scorer.score(prepared.messages)
        finally:
            prepared.release()


def _valid_inputs(blobs: list[bytes]) -> list[Prepared]:
    decoder = AlertDecoder()
    items = []
    for data in blobs:
        for _, prepared in prepare_message(decoder, data).records:
            if isinstance(prepared, Prepared):
                items.append(prepared)
    return items


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--stage",
    type=click.Choice(["decode", "features", "score"]),
    default="features",
    show_default=True,
    help="decode: Avro only; features: + triplet and metadata; "
    "score: end to end through the models.",
)
@options.engine_options
@options.preparation_options
@click.option("--repeat", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--baseline/--no-baseline", default=False, help="Also time the plain way.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench(
    paths: tuple[Path, ...],
    stage: str,
    engine: EngineSettings,
    preparation: PreparationSettings,
    repeat: int,
    baseline: bool,
    as_json: bool,
) -> None:
    """Measure alerts/s of a stage on PATHS (files, folders, archives)."""
    blobs = [item.data for item in read_items(expand(paths)) if item.failure is None]
    decoder = AlertDecoder()
    n = len(blobs)
    processes = resolve_processes(preparation, engine)
    result: dict[str, Any] = {
        "stage": stage,
        "alerts": n,
        "repeat": repeat,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor()}",
        "python": platform.python_version(),
        "version": __version__,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["btsbot-stream", *sys.argv[1:]]),
    }

    def decode_all() -> None:
        for data in blobs:
            try:
                decoder.decode(data)
            except InvalidAlert:
                continue

    if stage == "decode":
        result["alerts_per_s"] = _rate(n, decode_all, repeat)
        if baseline:
            result["baseline_alerts_per_s"] = _rate(
                n, lambda: [reference.read_alerts(d) for d in blobs], repeat
            )
    elif stage == "features":
        result["processes"] = processes
        if processes == 0:
            result["alerts_per_s"] = _rate(
                n, lambda: [prepare_message(decoder, d) for d in blobs], repeat
            )
        else:
            result["batch_size"] = engine.batch_size
            with closing(make_preparer(preparation, engine, Decoding())) as preparer:
                result["alerts_per_s"] = _rate(
                    n, lambda: _prepare_all(blobs, preparer, engine.batch_size), repeat
                )
            result["alerts_per_s_per_process"] = result["alerts_per_s"] / processes
        if baseline:
            result["baseline_alerts_per_s"] = _rate(n, lambda: _reference_features(blobs), repeat)
    else:
        scorer = load_scorer(engine, spinning=processes == 0)
        triplets, meta = stack(_valid_inputs(blobs))
        result["processes"] = processes
        result["models"] = list(engine.models)
        result["providers"] = {m.name: m.provider for m in scorer.models}
        result["batch_size"] = engine.batch_size
        result["model_only_alerts_per_s"] = _rate(
            len(triplets), lambda: [m.predict(triplets, meta) for m in scorer.models], repeat
        )
        with closing(make_preparer(preparation, engine, Decoding())) as preparer:
            result["alerts_per_s"] = _rate(
                n, lambda: _end_to_end(blobs, scorer, preparer, engine.batch_size), repeat
            )
        result["fraction_of_model_only"] = (
            result["alerts_per_s"] / result["model_only_alerts_per_s"]
        )
        if baseline:  # end to end too: one alert per decode/prepare/run call

            def one_at_a_time() -> None:
                for data in blobs:
                    scorer.score([prepare_message(decoder, data)])

            result["baseline_alerts_per_s"] = _rate(n, one_at_a_time, repeat)
    if "baseline_alerts_per_s" in result:
        result["speedup"] = result["alerts_per_s"] / result["baseline_alerts_per_s"]
    if as_json:
        click.echo(json.dumps(result, default=float))
        return
    for key, value in result.items():
        shown = f"{value:,.1f}" if isinstance(value, float | np.floating) else value
        click.echo(f"{key:>26}: {shown}")
