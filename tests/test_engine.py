"""The engine against the authors' own expected scores, and its fail-fast checks."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from btsbot_stream.alerts.features import METADATA_FEATURES
from btsbot_stream.engine.cards import ModelCard, ModelSource, sha256_of, write_card
from btsbot_stream.engine.exceptions import (
    ModelIntegrityError,
    ModelNotFoundError,
    ProviderError,
)
from btsbot_stream.engine.model import load_model


def _example(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    triplets = np.load(folder / "usage_triplets.npy").astype(np.float32)
    with (folder / "usage_candidates.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    meta = np.array([[float(r[f]) for f in METADATA_FEATURES] for r in rows], dtype=np.float32)
    expected = np.array([float(r["expected_scores"]) for r in rows])
    return triplets, meta, expected


@pytest.mark.parametrize("batch", [1, 7, 256])
def test_v1_reproduces_authors_expected_scores(example_dir: Path, models_dir: Path, batch: int):
    triplets, meta, expected = _example(example_dir)
    model = load_model("btsbot-v1.0.1", models_dir, device="cpu", max_batch=batch)
    scores = model.predict(triplets, meta)
    assert scores.shape == (39,)
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)
    assert model.provider == "cpu"


def test_missing_model_file_says_where_to_put_it(tmp_path: Path):
    with pytest.raises(ModelNotFoundError, match=r"btsbot-v1\.0\.1\.onnx.*--models-dir"):
        load_model("btsbot-v1.0.1", tmp_path)


def test_unknown_model_lists_known_ones(tmp_path: Path):
    with pytest.raises(ModelNotFoundError, match=r"no model card named 'nope'.*btsbot-v1\.0\.1"):
        load_model("nope", tmp_path)


def test_corrupt_model_file_is_refused(tmp_path: Path, models_dir: Path):
    copy = tmp_path / "btsbot-v1.0.1.onnx"
    shutil.copy(models_dir / "btsbot-v1.0.1.onnx", copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_model("btsbot-v1.0.1", tmp_path)


def test_gpu_asked_for_but_absent_is_an_error(models_dir: Path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA; the check is for CPU-only machines")
    with pytest.raises(ProviderError, match="CUDAExecutionProvider"):
        load_model("btsbot-v1.0.1", models_dir, device="cuda")


def _pixel_logit_model(path: Path) -> None:
    """logits[n] = image[n, 2, 0, 1] (NCHW): picks one known pixel of the difference stamp."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 63, 63])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1])
    consts = {
        "starts": [0, 2, 0, 1],
        "ends": [2**62, 3, 1, 2],
        "shape": [-1, 1],
    }
    nodes = [
        helper.make_node(
            "Constant", [], [k], value=helper.make_tensor(k, TensorProto.INT64, [len(v)], v)
        )
        for k, v in consts.items()
    ]
    nodes += [
        helper.make_node("Slice", ["image", "starts", "ends"], ["pixel"]),
        helper.make_node("Reshape", ["pixel", "shape"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "pixel", [image], [logits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def _write_pixel_card(path: Path, image_input: str) -> None:
    card = ModelCard(
        name="pixel",
        version="0",
        file=path.name,
        sha256=sha256_of(path),
        architecture="test",
        image_input=image_input,
        image_layout="NCHW",
        output="logits",
        output_kind="logit",
        source=ModelSource(kind="local", path=str(path.parent)),
    )
    write_card(card, path.parent)


def test_nchw_logit_model_gets_transposed_input_and_sigmoid(tmp_path: Path):
    path = tmp_path / "pixel.onnx"
    _pixel_logit_model(path)
    _write_pixel_card(path, image_input="image")
    model = load_model("pixel", tmp_path, device="cpu", max_batch=3)
    rng = np.random.default_rng(1)
    triplets = rng.normal(scale=3, size=(10, 63, 63, 3)).astype(np.float32)  # NHWC
    scores = model.predict(triplets, np.zeros((10, 25), np.float32))
    expected = 1 / (1 + np.exp(-triplets[:, 0, 1, 2].astype(np.float64)))
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-7)


def test_card_whose_graph_disagrees_is_refused(tmp_path: Path):
    path = tmp_path / "pixel.onnx"
    _pixel_logit_model(path)
    _write_pixel_card(path, image_input="triplet")
    with pytest.raises(ModelIntegrityError, match=r"inputs \['image'\].*\['triplet'\]"):
        load_model("pixel", tmp_path, device="cpu")


def test_batches_are_padded_to_buckets_and_results_unchanged(example_dir: Path, models_dir: Path):
    triplets, meta, expected = _example(example_dir)
    model = load_model("btsbot-v1.0.1", models_dir, device="cpu", buckets=(8, 64))
    seen = []
    run = model.session.run
    model.session.run = lambda out, feeds: (
        seen.append(len(next(iter(feeds.values())))) or run(out, feeds)
    )
    np.testing.assert_allclose(model.predict(triplets[:5], meta[:5]), expected[:5], atol=1e-6)
    np.testing.assert_allclose(model.predict(triplets, meta), expected, atol=1e-6)
    assert seen == [8, 64]  # 5 -> bucket 8, 39 -> bucket 64; padding rows dropped
    model.warm_up()
    assert seen[2:] == [8, 64]


def test_missing_gpu_can_degrade_loudly(models_dir: Path, caplog: pytest.LogCaptureFixture):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA; the check is for CPU-only machines")
    model = load_model("btsbot-v1.0.1", models_dir, device="cuda", degrade=True)
    assert model.provider == "cpu"
    assert "DEGRADED" in caplog.text
