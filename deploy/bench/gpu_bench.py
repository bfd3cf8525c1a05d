"""GPU throughput of every model in a models directory (issue #5's device check), and
the whole pipeline at ``--prepare-processes`` preparation workers (issue #12).

For each model and batch size: the provider ONNX Runtime really uses (the engine refuses
to start when it is not the one asked for) and the model-only alerts/s on real-shaped
inputs (the BTSbot example triplets, tiled). Then, unless ``--prepare-processes 0``:
real alerts (``--alerts``, repeated ``--copies`` times) prepared by that many worker
processes (alerts/s, and per process; target on a 16-core box: >= 15,000), and scored
end to end by ``--pipeline-model`` on the device, the next batch prepared while one is
scored (target >= 10,000 alerts/s). Prints one JSON object.

Usage: python deploy/bench/gpu_bench.py --models-dir models --shared ../shared
       [--device cuda] [--batches 64 128 256 512 1024] [--seconds 5]
       [--prepare-processes 16] [--alerts ../shared/data/ztf/alerts] [--copies 40]
Runs on a CPU too (``--device cpu --prepare-processes 2``), as a smoke test of the
script itself. Preparation needs /dev/shm room: (3 x batch + 0.5 MiB x workers) x ~48 kB.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from btsbot_stream.alerts.features import METADATA_FEATURES
from btsbot_stream.config import EngineSettings, PreparationSettings
from btsbot_stream.engine.cards import all_cards, model_path
from btsbot_stream.engine.model import load_model
from btsbot_stream.scoring import load_scorer
from btsbot_stream.workers import Decoding, make_preparer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from pool_bench import inputs, prepare_all, score_all, summary, timed  # noqa: E402


def example_inputs(shared: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    folder = shared / "data" / "btsbot-example"
    triplets = np.load(folder / "usage_triplets.npy").astype(np.float32)
    with (folder / "usage_candidates.csv").open() as fh:
        meta = np.array(
            [[float(r[f]) for f in METADATA_FEATURES] for r in csv.DictReader(fh)], np.float32
        )
    reps = -(-n // len(triplets))
    return np.tile(triplets, (reps, 1, 1, 1))[:n], np.tile(meta, (reps, 1))[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    parser.add_argument("--prepare-processes", type=int, default=16, help="0: skip the pipeline")
    parser.add_argument("--alerts", type=Path, default=HERE.parents[1] / "deploy/demo/alerts")
    parser.add_argument("--copies", type=int, default=200)
    parser.add_argument("--pipeline-model", default="btsbot-v1.0.1")
    parser.add_argument("--pipeline-batch", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    triplets, meta = example_inputs(args.shared, max(args.batches))
    results = []
    for name, card in sorted(all_cards(args.models_dir).items()):
        if not model_path(card, args.models_dir).is_file():
            continue
        for batch in args.batches:
            model = load_model(name, args.models_dir, args.device, buckets=[batch])
            model.warm_up()
            done, start = 0, time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                model.predict(triplets[:batch], meta[:batch])
                done += batch
            results.append(
                {
                    "model": name,
                    "dtype": card.input_dtype,
                    "batch": batch,
                    "provider": model.provider,
                    "alerts_per_s": done / (time.perf_counter() - start),
                }
            )
            print(json.dumps(results[-1]), flush=True)
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()}, {os.cpu_count()} cores",
        "device": args.device,
        "results": results,
    }
    if args.prepare_processes:
        report["pipeline"] = pipeline(args)
    print(json.dumps(report, indent=2))


def pipeline(args: argparse.Namespace) -> dict[str, object]:
    """Preparation at ``--prepare-processes`` workers, then end to end on the device."""
    blobs = inputs([args.alerts], args.copies)
    batch = args.pipeline_batch
    engine = EngineSettings(
        models=(args.pipeline_model,), models_dir=args.models_dir, device=args.device,
        batch_size=batch, batch_buckets=(batch,),
    )  # fmt: skip
    settings = PreparationSettings(processes=args.prepare_processes, slots=3)
    preparer = make_preparer(settings, engine, Decoding())
    try:
        prepare_all(blobs, preparer, batch)  # warm-up
        prepared = summary(
            len(blobs), [timed(lambda: prepare_all(blobs, preparer, batch), preparer)
                         for _ in range(args.rounds)]
        )  # fmt: skip
        prepared["alerts_per_s_per_process"] = prepared["alerts_per_s"] / args.prepare_processes
        scorer = load_scorer(engine, spinning=False)
        score_all(blobs, preparer, scorer, batch)  # warm-up
        scored = summary(
            len(blobs), [timed(lambda: score_all(blobs, preparer, scorer, batch), preparer)
                         for _ in range(args.rounds)]
        )  # fmt: skip
    finally:
        preparer.close()
    out = {
        "processes": args.prepare_processes,
        "inputs": len(blobs),
        "batch": batch,
        "model": args.pipeline_model,
        "provider": scorer.models[0].provider,
        "prepared": prepared,
        "scored_end_to_end": scored,
    }
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()
