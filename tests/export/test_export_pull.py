"""End to end per family: a checkpoint in the exact hub layout, pulled offline from a
pre-populated huggingface_hub cache, exported, checked against PyTorch, loaded by the
engine, and used by ``btsbot-stream score`` on real alerts of the demo sample."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from synthetic import FAMILIES, fake_revision, run_cli, train_config

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.prepare import Prepared, identity, prepare
from btsbot_stream.engine.model import load_model
from btsbot_stream.export.architectures import build_model
from btsbot_stream.export.checkpoints import load_weights, parse_train_config
from btsbot_stream.export.examples import InputSet, load_examples

pytestmark = pytest.mark.export

# MaxViT costs ~100 ms per alert on CPU: a small night of real alerts for it.
ALERT_FOLDERS = {
    "convnext_pico": ("20181129", "20200202", "20231012"),
    "maxvit_tiny_rw_224": ("20200202", "20231012"),
}


def _torch_model(key: str, state: dict) -> torch.nn.Module:
    spec = parse_train_config(
        train_config(FAMILIES[key]), {k: tuple(v.shape) for k, v in state.items()}
    )
    model = build_model(spec)
    load_weights(model, state, "synthetic")
    return model


def _torch_probabilities(model: torch.nn.Module, items: list[Prepared], metadata: bool):
    image = torch.from_numpy(np.stack([p.triplet for p in items]).transpose(0, 3, 1, 2).copy())
    args = [image, torch.from_numpy(np.stack([p.metadata for p in items]))] if metadata else [image]
    with torch.inference_mode():
        return torch.sigmoid(model(*args)).double().numpy().reshape(-1)


@pytest.mark.parametrize("key", list(FAMILIES))
def test_pull_offline_exports_verified_model(key, pulled, hub_files):
    family = FAMILIES[key]
    card, models_dir = pulled(key)

    assert card.source.kind == "hub"
    assert card.source.repo == family.repo
    assert card.source.revision == fake_revision(family.repo)  # resolved via refs/main
    weights = hub_files[key]["pytorch_model.bin"]
    assert card.source.checkpoint_sha256 == hashlib.sha256(weights).hexdigest()
    assert card.export is not None
    assert card.export.parity_max_abs <= 1e-5
    for inputs in ("39 BTSbot example triplets", "random batch of 1", "random batch of 64"):
        assert inputs in card.export.parity_inputs
    assert card.export.opset >= 17
    assert {"torch", "timm", "onnx", "onnxruntime"} <= set(card.export.tool_versions)
    assert (card.image_input, card.image_layout, card.output, card.output_kind) == (
        "image", "NCHW", "logits", "logit",
    )  # fmt: skip
    assert card.metadata_input == ("metadata" if family.metadata else None)
    assert card.recommended_max_batch == (256 if family.backbone == "convnext_pico" else 16)
    assert hashlib.sha256((models_dir / card.file).read_bytes()).hexdigest() == card.sha256

    session = ort.InferenceSession(str(models_dir / card.file), providers=["CPUExecutionProvider"])
    shapes = {i.name: i.shape for i in session.get_inputs()}
    assert shapes["image"][1:] == [3, 63, 63] and isinstance(shapes["image"][0], str)
    if family.metadata:
        assert shapes["metadata"][1:] == [25] and isinstance(shapes["metadata"][0], str)
    assert [o.name for o in session.get_outputs()] == ["logits"]
    assert not list(models_dir.glob(".*")), "a temporary export folder was left behind"


@pytest.mark.parametrize("key", list(FAMILIES))
def test_engine_and_score_cli_match_torch_on_real_alerts(
    key, pulled, states, example_dir: Path, demo_alerts: Path, tmp_path: Path
):
    family = FAMILIES[key]
    card, models_dir = pulled(key)
    model = _torch_model(key, states[key])

    # The engine (NHWC in, sigmoid applied) against PyTorch on a few example triplets.
    examples = load_examples(example_dir)
    examples = InputSet(examples.name, examples.triplets[:8], examples.metadata[:8])
    engine = load_model(family.name, models_dir, device="cpu")
    expected = _torch_probabilities(
        model,
        [Prepared(t, m) for t, m in zip(examples.triplets, examples.metadata, strict=True)],
        family.metadata,
    )
    np.testing.assert_allclose(
        engine.predict(examples.triplets, examples.metadata), expected, rtol=0, atol=1e-6
    )

    # The score CLI on real alerts, with the production model in the same run.
    folders = [demo_alerts / name for name in ALERT_FOLDERS[family.backbone]]
    out = tmp_path / "scores.jsonl"
    # The card's recommended batch (16 for MaxViT): the score CLI's default batch of 256
    # would warm MaxViT up at 256, ~18 GB of RAM on CPU.
    batch = str(card.recommended_max_batch)
    result = run_cli(
        "score", *map(str, folders), "--model", family.name, "--model", "btsbot-v1.0.1",
        "--models-dir", str(models_dir), "--device", "cpu", "--batch-size", batch,
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    scored = {line["candid"]: line["scores"] for line in lines if "scores" in line}

    decoder = AlertDecoder()
    prepared: dict[int, Prepared] = {}
    for path in sorted(p for folder in folders for p in folder.glob("*.avro")):
        for alert in decoder.decode(path.read_bytes()):
            item = prepare(alert)
            if isinstance(item, Prepared):
                prepared[identity(alert)[1]] = item
    assert len(prepared) >= 20 and set(scored) == set(prepared)
    candids = sorted(prepared)
    reference = _torch_probabilities(model, [prepared[c] for c in candids], family.metadata)
    cli = np.array([scored[c][family.name] for c in candids])
    np.testing.assert_allclose(cli, reference, rtol=0, atol=1e-5)
    assert np.ptp(cli) > 1e-4  # scores differ between alerts: a mix-up would show
    assert all(0.0 <= scored[c]["btsbot-v1.0.1"] <= 1.0 for c in candids)
