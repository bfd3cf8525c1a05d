"""A variant against its parent on the same alerts, alternating pass by pass.

Measures what ``btsbot-stream bench --stage score`` measures (the model alone, batched,
on prepared inputs; and ``score``'s end-to-end pipeline: decode, features, batched
inference, preparation prefetched in a thread), but in one process, alternating the two
models pass after pass so both see the same machine load. The speed-up is the ratio of
the medians; the CPU time per alert (all threads of the process) is given too, as it
moves less than wall time on a machine shared with other work. Prints one JSON object.

Usage: python deploy/bench/variant_bench.py ../shared/data/ztf/alerts \
           [--parent btsbot-v1.0.1] [--variant btsbot-v1.0.1-int8] [--models-dir models] \
           [--rounds 7] [--threads 0] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.prepare import Prepared, stack
from btsbot_stream.alerts.sources import expand, read_items
from btsbot_stream.background import prefetch
from btsbot_stream.config import EngineSettings
from btsbot_stream.scoring import PreparedMessage, Scorer, load_scorer, prepare_message


def end_to_end(blobs: list[bytes], scorer: Scorer, batch: int) -> None:
    """``score``'s pipeline on bytes in memory (as ``bench --stage score``)."""
    decoder = AlertDecoder()

    def chunks() -> Iterator[list[PreparedMessage]]:
        for start in range(0, len(blobs), batch):
            yield [prepare_message(decoder, d) for d in blobs[start : start + batch]]

    for chunk in prefetch(chunks()):
        scorer.score(chunk)


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call; CPU time counts every thread of this process, so
    it moves less than wall time when other work shares the cores."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--parent", default="btsbot-v1.0.1")
    parser.add_argument("--variant", default="btsbot-v1.0.1-int8")
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    blobs = [item.data for item in read_items(expand(args.paths)) if item.failure is None]
    decoder = AlertDecoder()
    prepared = [
        p for d in blobs for _, p in prepare_message(decoder, d).records if isinstance(p, Prepared)
    ]
    triplets, meta = stack(prepared)
    names = (args.parent, args.variant)
    scorers = {
        name: load_scorer(
            EngineSettings(
                models=(name,), models_dir=args.models_dir, device=args.device,
                threads=args.threads, batch_size=args.batch_size,
            )
        )
        for name in names
    }  # fmt: skip
    seconds: dict[str, dict[str, list[tuple[float, float]]]] = {
        n: {"model": [], "e2e": []} for n in names
    }
    for name in names:  # warm-up
        end_to_end(blobs[:64], scorers[name], args.batch_size)
    for _ in range(args.rounds):
        for name in names:
            model = scorers[name].models[0]
            seconds[name]["model"].append(timed(lambda m=model: m.predict(triplets, meta)))
            seconds[name]["e2e"].append(
                timed(lambda s=scorers[name]: end_to_end(blobs, s, args.batch_size))
            )

    def median(runs: list[tuple[float, float]], which: int) -> float:
        return statistics.median(run[which] for run in runs)

    rate = {
        n: {
            "model_only_alerts_per_s": len(triplets) / median(s["model"], 0),
            "end_to_end_alerts_per_s": len(blobs) / median(s["e2e"], 0),
            "end_to_end_range": [
                len(blobs) / max(w for w, _ in s["e2e"]),
                len(blobs) / min(w for w, _ in s["e2e"]),
            ],
            "model_only_cpu_us_per_alert": 1e6 * median(s["model"], 1) / len(triplets),
            "end_to_end_cpu_us_per_alert": 1e6 * median(s["e2e"], 1) / len(blobs),
        }
        for n, s in seconds.items()
    }
    parent, variant = rate[args.parent], rate[args.variant]
    print(
        json.dumps(
            {
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "load_average": os.getloadavg(),
                "alerts": len(blobs),
                "scorable": len(triplets),
                "rounds": args.rounds,
                "threads": args.threads,
                "batch_size": args.batch_size,
                "rates": rate,
                "speedup_model_only": variant["model_only_alerts_per_s"]
                / parent["model_only_alerts_per_s"],
                "speedup_end_to_end": variant["end_to_end_alerts_per_s"]
                / parent["end_to_end_alerts_per_s"],
                "cpu_time_ratio_model_only": parent["model_only_cpu_us_per_alert"]
                / variant["model_only_cpu_us_per_alert"],
                "cpu_time_ratio_end_to_end": parent["end_to_end_cpu_us_per_alert"]
                / variant["end_to_end_cpu_us_per_alert"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
