"""GPU variants of btsbot-v1.0.1 through the fidelity gate, then their throughput (issue #12).

Prepared for a GPU machine; not run on one yet. On the device it makes, in a scratch
models directory beside the production model:

- ``btsbot-v1.0.1-fp16``: Conv/MatMul/Gemm in float16 (scope ``all``), gated on CUDA;
- ``btsbot-v1.0.1-int8-trt``: conv2-conv4 int8 with *symmetric* int8 activations (what
  TensorRT's explicit quantization takes), gated on TensorRT with ``trt_int8_enable``
  for the variant only (the float32 parent has no scales to give TensorRT);
- the CPU recipe ``btsbot-v1.0.1-int8`` (uint8 activations), gated on CUDA for reference.

Each gate prints its report; a variant that fails is reported, not installed. Then every
installed model is timed on the device (model only, batches of real-shaped inputs), with
the provider options it was gated with. Prints one JSON summary at the end.

Usage: python deploy/bench/gpu_variants.py --shared ../shared [--work /tmp/gpu-variants]
       [--batches 256 1024] [--seconds 5]
``--device cpu`` runs the same steps on the CPU: a smoke test of the script itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from btsbot_stream.engine.cards import find_card, verify_file
from btsbot_stream.engine.model import OnnxModel
from btsbot_stream.engine.providers import gpu_options
from btsbot_stream.quantize import build
from btsbot_stream.quantize.dataset import gather
from btsbot_stream.quantize.exceptions import GateFailedError
from btsbot_stream.quantize.recipe import Recipe
from btsbot_stream.quantize.report import GateLimits

sys.path.insert(0, str(Path(__file__).parent))
from gpu_bench import example_inputs

PARENT = "btsbot-v1.0.1"
REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


def _trt_int8() -> dict[str, dict[str, Any]]:
    options = gpu_options()
    options["TensorrtExecutionProvider"] |= {"trt_int8_enable": True}
    return options


def plans(device: str) -> list[tuple[str, Recipe, str, tuple[Any, Any]]]:
    """(variant name, recipe, gate device, (parent, variant) provider options)."""
    gpu = device != "cpu"
    plain = (gpu_options(), gpu_options())
    return [
        (f"{PARENT}-fp16", Recipe(precision="fp16", scope="all"), "cuda" if gpu else "cpu", plain),
        (
            f"{PARENT}-int8-trt",
            Recipe(activations="int8"),
            "tensorrt" if gpu else "cpu",
            (gpu_options(), _trt_int8()) if gpu else plain,
        ),
        (f"{PARENT}-int8", Recipe(), "cuda" if gpu else "cpu", plain),
    ]


def throughput(model: OnnxModel, batch: int, seconds: float, shared: Path) -> float:
    triplets, meta = example_inputs(shared, batch)
    model.warm_up()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        model.predict(triplets, meta)
        done += batch
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu-variants"))
    parser.add_argument("--device", default="gpu", choices=["gpu", "cpu"])
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    models = args.work / "models"
    models.mkdir(parents=True, exist_ok=True)
    if not (models / f"{PARENT}.onnx").exists():
        (models / f"{PARENT}.onnx").symlink_to(REPO_MODELS / f"{PARENT}.onnx")
    alerts = args.shared / "data" / "ztf"
    data = gather([alerts / "alerts"], [], 0.5, alerts / "LABELS.csv")
    gates, timed = [], []
    timed_models = [(PARENT, "cuda" if args.device == "gpu" else "cpu", gpu_options())]
    timed_models += [(PARENT, "tensorrt", gpu_options())] if args.device == "gpu" else []
    for name, recipe, device, options in plans(args.device):
        try:
            result = build.make_variant(
                PARENT, models, recipe, data, GateLimits(), name, device,  # type: ignore[arg-type]
                provider_options=options,
            )  # fmt: skip
            report = result.report
            timed_models.append((name, device, options[1]))
        except GateFailedError as failed:
            report = failed.report
        print(report.render(), flush=True)
        gates.append({"variant": name, "device": device, "summary": report.summary()})
    for name, device, options in timed_models:
        card = find_card(name, models)
        for batch in args.batches:
            model = OnnxModel(
                card,
                verify_file(card, models),
                device,
                buckets=[batch],
                gpu_options=options,  # type: ignore[arg-type]
            )
            rate = throughput(model, batch, args.seconds, args.shared)
            timed.append(
                {"model": name, "provider": model.provider, "batch": batch, "alerts_per_s": rate}
            )
            print(json.dumps(timed[-1]), flush=True)
    summary = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.node(),
        "gates": gates,
        "throughput": timed,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
