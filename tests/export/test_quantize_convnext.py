"""``models quantize`` on an exported ConvNeXt (the synthetic checkpoint of these tests).

What this shows: the command works on the timm graphs (NCHW input, logit output), the
``pointwise-conv`` scope puts exactly the blocks' 1x1 convolutions in int8 and leaves
the stem, the depthwise and downsampling convolutions and the head in float32, and the
variant scores beside its parent. What it cannot show: fidelity. The weights are random,
so the scores bunch together and say nothing about the published models; that check
waits for the real checkpoints (``models pull`` with network access).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from btsbot_stream.cli import main
from btsbot_stream.engine.cards import find_card
from btsbot_stream.engine.model import load_model
from btsbot_stream.export.examples import load_examples

pytestmark = pytest.mark.export


def test_convnext_int8_reduces_the_pointwise_convolutions(
    pulled, tmp_path: Path, demo_alerts: Path, example_dir: Path
):
    card, repo = pulled("convnext")
    models = tmp_path / "models"
    models.mkdir()
    (models / card.file).symlink_to(repo / card.file)
    shutil.copy(repo / f"{card.name}.json", models)
    args = [
        "--log-level", "WARNING", "models", "quantize", card.name, "--calibration",
        str(demo_alerts), "--min-held-out", "10", "--device", "cpu", "--speed-rounds", "0",
        "--models-dir", str(models),
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    variant = find_card(f"{card.name}-int8", models)
    assert variant.derived_from.settings["scope"] == "pointwise-conv"
    assert (variant.image_layout, variant.output_kind) == ("NCHW", "logit")

    graph = onnx.load(str(models / variant.file)).graph
    weight_of = {
        out: n.input[0] for n in graph.node if n.op_type == "DequantizeLinear" for out in n.output
    }
    int8_weights = sorted(
        weight_of[n.input[1]] for n in graph.node if n.op_type == "Conv" and n.input[1] in weight_of
    )
    fp32_weights = sorted(
        n.input[1] for n in graph.node if n.op_type == "Conv" and n.input[1] not in weight_of
    )
    assert len(int8_weights) == 24  # convnext_pico: 12 blocks x (fc1, fc2)
    assert all(".mlp.fc" in w for w in int8_weights)
    assert not any(".mlp.fc" in w for w in fp32_weights)
    assert any("stem" in w for w in fp32_weights) and any("conv_dw" in w for w in fp32_weights)

    inputs = load_examples(example_dir)
    both = [load_model(n, models, device="cpu") for n in (card.name, variant.name)]
    parent_scores, variant_scores = (m.predict(inputs.triplets, inputs.metadata) for m in both)
    assert abs(parent_scores - variant_scores).max() <= 0.05
