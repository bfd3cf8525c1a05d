"""GPU throughput of every model in a models directory (issue #5's device check).

For each model and batch size: the provider ONNX Runtime really uses (the engine refuses
to start when it is not the one asked for) and the model-only alerts/s on real-shaped
inputs (the BTSbot example triplets, tiled). Prints one JSON object.

Usage: python deploy/bench/gpu_bench.py --models-dir models --shared ../shared
       [--device cuda] [--batches 64 128 256 512 1024] [--seconds 5]
Runs on a CPU too (``--device cpu``), as a smoke test of the script itself.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import platform
import time
from pathlib import Path

import numpy as np

from btsbot_stream.alerts.features import METADATA_FEATURES
from btsbot_stream.engine.cards import all_cards, model_path
from btsbot_stream.engine.model import load_model


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
    summary = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.node(),
        "device": args.device,
        "results": results,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
