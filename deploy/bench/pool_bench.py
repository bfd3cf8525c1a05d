"""Preparation across processes (issue #12), every figure from one run; results go in
docs/benchmarks.md.

1. features: decode + stamps + features of every input, ``--batch-size`` at a time, for
   each ``--processes`` value (0: in this process, one core; N: N worker processes
   writing into shared memory); alerts/s, alerts/s per process, the scaling against the
   smallest N >= 1, and CPU time per alert (this process and its workers).
2. score: ``btsbot-stream score``'s pipeline (the next batch prepared while this one is
   scored) for each ``--models`` entry and ``--score-processes`` value; with two models,
   the second's rate over the first's (int8 over fp32) per processes value, and per
   model the pool's rate over the in-process one (``0``) when both are measured.

Configurations alternate pass after pass (one pass of each per round), so they share the
machine's load; figures are medians over ``--rounds``. Inputs: the repository's demo
sample unless PATHS are given, repeated ``--copies`` times (bytes already in memory).

Usage: python deploy/bench/pool_bench.py [PATHS...] [--copies 20] [--rounds 5]
       [--processes 0 1 2] [--models btsbot-v1.0.1 btsbot-v1.0.1-int8]
       [--score-processes 0 auto] [--device cpu] [--batch-size 256] [--json F]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from functools import partial
from pathlib import Path
from typing import Any

from proc_tree import cpu_seconds as process_cpu_seconds

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.sources import expand, read_items
from btsbot_stream.config import EngineSettings, PreparationSettings
from btsbot_stream.scoring import Scorer, load_scorer, prepare_message
from btsbot_stream.workers import Decoding, Preparer, make_preparer, prepare_ahead
from btsbot_stream.workers.cores import resolve_processes

REPO = Path(__file__).resolve().parents[2]


def inputs(paths: list[Path], copies: int) -> list[bytes]:
    blobs = [item.data for item in read_items(expand(paths)) if item.failure is None]
    return blobs * copies


def chunks(blobs: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(blobs), size):
        yield blobs[start : start + size]


def prepare_each(decoder: AlertDecoder, blobs: list[bytes]) -> None:
    for blob in blobs:
        prepare_message(decoder, blob)


def prepare_all(blobs: list[bytes], preparer: Preparer, size: int) -> None:
    for _, batch in prepare_ahead(preparer, chunks(blobs, size), list, ahead=1):
        batch.release()


def score_all(blobs: list[bytes], preparer: Preparer, scorer: Scorer, size: int) -> None:
    for _, batch in prepare_ahead(preparer, chunks(blobs, size), list, ahead=1):
        try:
            scorer.score(batch.messages)
        finally:
            batch.release()


def cpu_seconds(preparer: Any) -> float:
    """CPU time of this process and of its preparation workers (Linux /proc)."""
    pids = getattr(preparer, "pids", list)()
    return time.process_time() + sum(process_cpu_seconds(pid) for pid in pids)


def timed(fn: Callable[[], object], preparer: Any) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds(preparer)
    fn()
    return time.perf_counter() - wall, cpu_seconds(preparer) - cpu


def summary(n: int, runs: list[tuple[float, float]]) -> dict[str, Any]:
    return {
        "alerts_per_s": n / statistics.median(w for w, _ in runs),
        "range": [n / max(w for w, _ in runs), n / min(w for w, _ in runs)],
        "cpu_us_per_alert": 1e6 * statistics.median(c for _, c in runs) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[REPO / "deploy/demo/alerts"])
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--processes", nargs="*", default=["0", "1", "2"])
    parser.add_argument("--models", nargs="*", default=["btsbot-v1.0.1", "btsbot-v1.0.1-int8"])
    parser.add_argument("--score-processes", nargs="*", default=["0", "auto"])
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    blobs = inputs(args.paths, args.copies)
    n = len(blobs)
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor()}",
        "command": "python deploy/bench/pool_bench.py " + " ".join(sys.argv[1:]),
        "load_average_before": os.getloadavg(),
        "inputs": n,
        "rounds": args.rounds,
        "batch_size": args.batch_size,
    }

    def engine(model: str) -> EngineSettings:
        return EngineSettings(
            models=(model,), models_dir=args.models_dir, device=args.device,
            threads=args.threads, batch_size=args.batch_size,
        )  # fmt: skip

    def workers(value: str) -> int:
        processes = value if value == "auto" else int(value)
        return resolve_processes(PreparationSettings(processes=processes), engine(args.models[0]))

    with ExitStack() as stack:
        preparers: dict[int, Any] = {}
        for count in sorted({workers(v) for v in [*args.processes, *args.score_processes]}):
            settings = PreparationSettings(processes=count)
            preparer = make_preparer(settings, engine(args.models[0]), Decoding())
            preparers[count] = stack.enter_context(closing(preparer))
        decoder = AlertDecoder()
        jobs: dict[str, tuple[Callable[[], object], Any]] = {}
        for value in args.processes:
            count = workers(value)
            fn: Callable[[], object] = partial(
                prepare_all, blobs, preparers[count], args.batch_size
            )
            if count == 0:  # one core, no thread: as ``bench --stage features --processes 0``
                fn = partial(prepare_each, decoder, blobs)
            jobs[f"features@{count}"] = (fn, preparers[count])
        for model in args.models:
            for value in args.score_processes:
                count = workers(value)
                scorer = load_scorer(engine(model), spinning=count == 0)
                fn = partial(score_all, blobs, preparers[count], scorer, args.batch_size)
                jobs[f"score:{model}@{count}"] = (fn, preparers[count])
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in jobs}
        for fn, _ in jobs.values():  # warm-up
            fn()
        for _ in range(args.rounds):
            for name, (fn, preparer) in jobs.items():
                runs[name].append(timed(fn, preparer))
    result["load_average_after"] = os.getloadavg()
    figures = {name: summary(n, r) for name, r in runs.items()}
    result["figures"] = figures
    result["ratios"] = ratios(figures, args.models)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


def ratios(figures: dict[str, dict[str, Any]], models: list[str]) -> dict[str, float]:
    rate = {name: f["alerts_per_s"] for name, f in figures.items()}
    out: dict[str, float] = {}
    features = {int(k.split("@")[1]): v for k, v in rate.items() if k.startswith("features@")}
    pooled = sorted(c for c in features if c >= 1)
    for count in pooled[1:]:
        out[f"features {count} processes / {pooled[0]}"] = features[count] / features[pooled[0]]
    counts = sorted({int(k.split("@")[1]) for k in rate if k.startswith("score:")})
    if len(models) == 2:
        for count in counts:
            first, second = (rate.get(f"score:{m}@{count}") for m in models)
            if first and second:
                out[f"score {models[1]} / {models[0]} @{count} processes"] = second / first
    for model in models:
        base = rate.get(f"score:{model}@0")
        for count in counts:
            if count and base and f"score:{model}@{count}" in rate:
                out[f"score {model} @{count} / in-process"] = rate[f"score:{model}@{count}"] / base
    return out


if __name__ == "__main__":
    main()
