"""What an export must refuse, with a message naming the problem, leaving the models
directory exactly as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from synthetic import FAMILIES, checkpoint_files, train_config, write_folder, write_hub_cache

from btsbot_stream.alerts.features import METADATA_FEATURES
from btsbot_stream.cli import main
from btsbot_stream.export import build, onnx_export
from btsbot_stream.export.checkpoints import parse_train_config
from btsbot_stream.export.exceptions import (
    CheckpointError,
    DownloadError,
    ParityError,
    StateDictMismatchError,
    TrainConfigError,
)

pytestmark = pytest.mark.export

CONVNEXT = FAMILIES["convnext"]


def _untouched(models_dir: Path) -> None:
    """Nothing installed, no temporary folder left behind."""
    leftovers = list(models_dir.iterdir()) if models_dir.exists() else []
    assert leftovers == [], leftovers


def _export(folder: Path, models_dir: Path, name: str = CONVNEXT.name):
    return build.export_folder(folder, name, models_dir)


def test_missing_key_is_refused_with_its_name(states, tmp_path: Path):
    state = dict(states["convnext"])
    del state["convnext.head.8.bias"]
    folder = write_folder(tmp_path / "ckpt", checkpoint_files(state, train_config(CONVNEXT)))
    models_dir = tmp_path / "models"
    result = CliRunner().invoke(
        main, ["models", "export", "--from", str(folder), CONVNEXT.name, "--models-dir",
               str(models_dir)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "missing keys: convnext.head.8.bias" in result.stderr
    _untouched(models_dir)


def test_renamed_key_is_refused_naming_both_names(states, tmp_path: Path):
    state = dict(states["convnext-fusion"])
    state["meta_branch.net.0.running_mean"] = state.pop("meta_branch.network.0.running_mean")
    family = FAMILIES["convnext-fusion"]
    folder = write_folder(tmp_path / "ckpt", checkpoint_files(state, train_config(family)))
    with pytest.raises(StateDictMismatchError) as info:
        _export(folder, tmp_path / "models", family.name)
    assert info.value.missing == ["meta_branch.network.0.running_mean"]
    assert info.value.unexpected == ["meta_branch.net.0.running_mean"]
    assert "meta_branch.network.0.running_mean" in str(info.value)
    assert "meta_branch.net.0.running_mean" in str(info.value)
    _untouched(tmp_path / "models")


def test_wrong_width_is_refused_with_both_shapes(states, tmp_path: Path):
    config = train_config(CONVNEXT) | {"fc1_neurons": 32}
    folder = write_folder(tmp_path / "ckpt", checkpoint_files(states["convnext"], config))
    with pytest.raises(StateDictMismatchError, match=r"convnext.head.3.weight: file \(64, 512\)"):
        _export(folder, tmp_path / "models")


def test_truncated_weights_are_refused(hub_files, tmp_path: Path):
    files = dict(hub_files["convnext"])
    files["pytorch_model.bin"] = files["pytorch_model.bin"][: len(files["pytorch_model.bin"]) // 2]
    folder = write_folder(tmp_path / "ckpt", files)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        _export(folder, tmp_path / "models")
    _untouched(tmp_path / "models")


def test_corrupt_blob_in_hub_cache_is_refused(offline_hub: Path, hub_files, tmp_path: Path):
    files = hub_files["convnext"]
    write_hub_cache(offline_hub, CONVNEXT.repo, files)
    blobs = offline_hub / f"models--{CONVNEXT.repo.replace('/', '--')}" / "blobs"
    blob = next(blobs.glob("?" * 64))  # the weights: named by their sha256
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: still a readable zip, damaged weights
    blob.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"corrupt or truncated.*pull again"):
        build.pull(CONVNEXT.name, tmp_path / "models")
    _untouched(tmp_path / "models")


def test_offline_without_cache_says_how_to_fix(offline_hub: Path, tmp_path: Path):
    with pytest.raises(DownloadError, match=r"HF_HUB_OFFLINE.*export --from"):
        build.pull(CONVNEXT.name, tmp_path / "models")
    _untouched(tmp_path / "models")


class _Payload:
    """Any class: unpickling it from a download could run arbitrary code."""


def test_pickled_objects_are_refused(tmp_path: Path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    torch.save({"convnext.stem.0.weight": _Payload()}, folder / "pytorch_model.bin")
    (folder / "train_config.json").write_text(json.dumps(train_config(CONVNEXT)))
    with pytest.raises(CheckpointError, match="objects other than tensors"):
        _export(folder, tmp_path / "models")


def test_checkpoint_of_another_family_is_refused(hub_files, tmp_path: Path):
    folder = write_folder(tmp_path / "ckpt", hub_files["convnext"])
    with pytest.raises(TrainConfigError, match=r"maxvit_tiny_rw_224 model.*convnext_pico"):
        _export(folder, tmp_path / "models", "btsbot-maxvit-tiny-in1k")


def test_metadata_columns_in_another_order_are_refused():
    config = train_config(FAMILIES["convnext-fusion"])
    config["metadata_cols"] = list(reversed(METADATA_FEATURES))
    with pytest.raises(TrainConfigError, match="metadata_cols"):
        parse_train_config(config, {})


def test_fusion_widths_come_from_weights_when_config_lacks_meta_model_config():
    config = train_config(FAMILIES["maxvit-fusion"])
    del config["meta_model_config"]
    shapes = {"meta_branch.network.1.weight": (40, 25), "meta_branch.network.4.weight": (12, 40)}
    spec = parse_train_config(config, shapes)
    assert spec.fusion is not None and (spec.fusion.meta_fc1, spec.fusion.meta_fc2) == (40, 12)


def test_parity_failure_keeps_the_directory_as_it_was(hub_files, tmp_path: Path, monkeypatch):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    previous = {f"{CONVNEXT.name}{suffix}": b"previous export" for suffix in (".onnx", ".json")}
    for name, data in previous.items():
        (models_dir / name).write_bytes(data)
    monkeypatch.setattr(onnx_export, "PARITY_TOLERANCE", -1.0)  # no graph can pass
    folder = write_folder(tmp_path / "ckpt", hub_files["convnext"])
    with pytest.raises(ParityError, match="nothing was installed"):
        _export(folder, models_dir)
    assert {p.name: p.read_bytes() for p in models_dir.iterdir()} == previous
