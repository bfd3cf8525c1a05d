"""Reading a BTSbot checkpoint safely: ``train_config.json`` -> :class:`ModelSpec`, and
``pytorch_model.bin`` -> weights loaded into the architecture with every key accounted for.

``torch.load`` runs with ``weights_only=True`` only: a state_dict is tensors and plain
containers, and unpickling anything else from a downloaded file would run its code.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from btsbot_stream.alerts.features import METADATA_FEATURES
from btsbot_stream.export.architectures import Backbone, FusionSpec, ModelSpec
from btsbot_stream.export.exceptions import (
    CheckpointError,
    StateDictMismatchError,
    TrainConfigError,
)

# BTSbot's model_name values for the published models (btsbot/architectures.py classes).
IMAGE_MODELS = ("ConvNeXt", "MaxViT")
FUSION_MODEL = "frozen_fusion"
_BACKBONE_OF_MODEL: dict[str, Backbone] = {
    "ConvNeXt": "convnext_pico",
    "MaxViT": "maxvit_tiny_rw_224",
}


def read_json(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrainConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(config, dict):
        raise TrainConfigError(f"{path} holds a {type(config).__name__}, not a JSON object")
    return config


def _backbone(image_config: Mapping[str, Any], where: str) -> Backbone:
    """The timm architecture of an image model config, checked against its model_kind.

    ``model_kind`` names the pre-trained weights training started from
    (``convnext_pico.d1_in1k``, ``hf_hub:mwalmsley/zoobot-encoder-convnext_pico``,
    ``maxvit_tiny_rw_224.sw_in1k``...); we only need the architecture, built here
    without weights (they come from the checkpoint).
    """
    model_name = image_config.get("model_name")
    if model_name not in _BACKBONE_OF_MODEL:
        raise TrainConfigError(
            f"{where}: model_name {model_name!r} is not a supported BTSbot image model "
            f"({', '.join(IMAGE_MODELS)})"
        )
    backbone = _BACKBONE_OF_MODEL[model_name]
    kind = str(image_config.get("model_kind", "")).lower()
    family = "convnext_pico" if backbone == "convnext_pico" else "maxvit_tiny"
    if family not in kind or "_tf_" in kind:
        raise TrainConfigError(
            f"{where}: model_kind {image_config.get('model_kind')!r} is not a {backbone} "
            "backbone; only convnext_pico and maxvit_tiny_rw_224 models are supported"
        )
    return backbone


def _width(config: Mapping[str, Any], field: str, where: str) -> int:
    value = config.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TrainConfigError(f"{where}: {field} is {value!r}, expected a positive integer")
    return value


def _metadata_features(config: Mapping[str, Any], meta_config: Mapping[str, Any]) -> int:
    # The service computes exactly METADATA_FEATURES in that order: a model trained on
    # other columns, or in another order, would be fed the wrong numbers silently.
    for cols in (config.get("metadata_cols"), meta_config.get("metadata_cols")):
        if cols is not None and tuple(cols) != METADATA_FEATURES:
            raise TrainConfigError(
                f"train_config.json metadata_cols {list(cols)} differ from the features the "
                f"service computes, in order: {list(METADATA_FEATURES)}"
            )
    return len(METADATA_FEATURES)


def parse_train_config(
    config: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]
) -> ModelSpec:
    """The architecture a BTSbot ``train_config.json`` describes.

    Parameters
    ----------
    config : mapping
        The parsed ``train_config.json`` (BTSbot's training config, as uploaded by its
        ``to_HF.py``).
    shapes : mapping
        State_dict key -> tensor shape. Used only for the metadata-MLP widths when a
        fusion config does not embed ``meta_model_config`` (BTSbot then read them from
        the metadata model's own run folder, which the hub repository does not carry).
    """
    model_name = config.get("model_name")
    if model_name in IMAGE_MODELS:
        backbone = _backbone(config, "train_config.json")
        head = (_width(config, "fc1_neurons", "train_config.json"),
                _width(config, "fc2_neurons", "train_config.json"))  # fmt: skip
        return ModelSpec(backbone=backbone, image_head=head)
    if model_name != FUSION_MODEL:
        raise TrainConfigError(
            f"train_config.json: model_name {model_name!r} is not a published BTSbot model "
            f"({', '.join((*IMAGE_MODELS, FUSION_MODEL))})"
        )
    image_config = config.get("image_model_config")
    if not isinstance(image_config, Mapping):
        raise TrainConfigError("train_config.json: a frozen_fusion config needs image_model_config")
    backbone = _backbone(image_config, "train_config.json image_model_config")
    meta_config = config.get("meta_model_config") or {}
    if not isinstance(meta_config, Mapping):
        raise TrainConfigError("train_config.json: meta_model_config is not an object")
    if meta_config:
        meta_fc1 = _width(meta_config, "meta_fc1_neurons", "meta_model_config")
        meta_fc2 = _width(meta_config, "meta_fc2_neurons", "meta_model_config")
    else:
        # Linear weights are (out, in): network.1 is fc1, network.4 is fc2.
        meta_fc1 = shapes.get("meta_branch.network.1.weight", (1,))[0]
        meta_fc2 = shapes.get("meta_branch.network.4.weight", (1,))[0]
    fusion = FusionSpec(
        meta_fc1=meta_fc1,
        meta_fc2=meta_fc2,
        comb_fc1=_width(config, "comb_fc1_neurons", "train_config.json"),
        comb_fc2=_width(config, "comb_fc2_neurons", "train_config.json"),
        n_features=_metadata_features(config, meta_config),
    )
    return ModelSpec(backbone=backbone, fusion=fusion)


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict from ``path``, refusing anything but tensors and plain containers."""
    fix = "delete it and download (or copy) it again"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} holds objects other than tensors, refused (only weights_only loading is "
            f"allowed); or it is corrupt: {fix}. Detail: {str(exc).splitlines()[0]}"
        ) from exc
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{path} is truncated or corrupt, not a readable PyTorch state_dict: {fix}. "
            f"Detail: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"{path} is not a state_dict (a mapping of names to tensors)")
    return dict(state)


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``; every key must match by name and shape.

    Raises
    ------
    StateDictMismatchError
        Listing the missing, unexpected and misshapen keys.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshapen = [
        f"{key}: file {tuple(state[key].shape)} vs model {tuple(tensor.shape)}"
        for key, tensor in expected.items()
        if key in state and state[key].shape != tensor.shape
    ]
    if missing or unexpected or misshapen:
        raise StateDictMismatchError(source, missing, unexpected, misshapen)
    model.load_state_dict(state, strict=True)
    model.eval()
