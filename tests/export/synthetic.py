"""Synthetic BTSbot checkpoints in the exact Hugging Face layout, with random weights.

The state_dict is rebuilt here from timm's own backbone keys plus the head keys that
BTSbot's ``architectures.py`` produces (``nn.Sequential`` positions), independently of
``btsbot_stream.export.architectures``: a test that our modules load it with
``strict=True`` then checks our layout against the published one, not against itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from btsbot_stream.alerts.features import METADATA_FEATURES
from btsbot_stream.engine.catalogue import CATALOGUE

if TYPE_CHECKING:  # torch only where a checkpoint is made: the no-torch tests import this
    import torch

FC1, FC2 = 64, 16  # image head widths (fc1_neurons, fc2_neurons)
META_FC1, META_FC2 = 32, 16  # metadata MLP
COMB_FC1, COMB_FC2 = 32, 8  # combined head
EMBEDDING = 512


@dataclass(frozen=True)
class Family:
    """One of the four model families, as one published model name."""

    name: str  # catalogue name
    backbone: str
    model_kind: str  # what BTSbot's train_config records
    metadata: bool

    @property
    def repo(self) -> str:
        return CATALOGUE[self.name].repo


FAMILIES = {
    "convnext": Family(
        "btsbot-convnext-pico-in1k", "convnext_pico", "convnext_pico.d1_in1k", False
    ),
    "convnext-fusion": Family(
        "btsbot-convnext-pico-galaxyzoo-metadata", "convnext_pico",
        "hf_hub:mwalmsley/zoobot-encoder-convnext_pico", True,
    ),
    "maxvit": Family(
        "btsbot-maxvit-tiny-randinit", "maxvit_tiny_rw_224", "maxvit_tiny_rw_224.sw_in1k", False
    ),
    "maxvit-fusion": Family(
        "btsbot-maxvit-tiny-galaxyzoo-metadata", "maxvit_tiny_rw_224",
        "hf_hub:mwalmsley/baseline-encoder-regression-maxvit_tiny", True,
    ),
}  # fmt: skip


def _linear(state: dict[str, torch.Tensor], key: str, n_in: int, n_out: int) -> None:
    import torch

    state[f"{key}.weight"] = torch.randn(n_out, n_in) / n_in**0.5
    state[f"{key}.bias"] = torch.randn(n_out) * 0.05


def _trained_like(key: str, value: torch.Tensor) -> torch.Tensor:
    """Move timm's initial values away from the degenerate ones a trained model never has:
    ConvNeXt's layer scales start at 1e-6 (blocks are near identities) and biases at 0
    (the stem + LayerNorm is then blind to the stamps' brightness scale)."""
    import torch

    if not value.is_floating_point():
        return value
    if key.endswith("gamma"):
        return torch.empty_like(value).uniform_(0.1, 0.5)
    if key.endswith("running_var"):
        return torch.empty_like(value).uniform_(0.5, 1.5)
    if key.endswith(("bias", "running_mean")):
        return value + 0.05 * torch.randn_like(value)
    return value


def published_state_dict(
    family: Family, metadata_mean: np.ndarray, metadata_std: np.ndarray, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A state_dict with the key names and shapes of the published checkpoint.

    ``metadata_mean``/``metadata_std`` become the metadata BatchNorm's running statistics,
    as training would have left them, so raw features are scaled to order one.
    """
    import timm
    import torch

    torch.manual_seed(seed)
    timm_state = timm.create_model(family.backbone, pretrained=False).state_dict()
    prefix = ("image_branch." if family.metadata else "") + (
        "convnext." if family.backbone == "convnext_pico" else "maxvit."
    )
    state: dict[str, torch.Tensor] = {}
    for key, value in list(timm_state.items()):
        timm_state[key] = _trained_like(key, value)
    for key, value in timm_state.items():
        if key.startswith("head.norm."):  # ConvNeXt: pool, norm, flatten -> head.1 is the norm
            state[prefix + "head.1." + key.rsplit(".", 1)[1]] = value
        elif not key.startswith("head."):  # the timm classifier is replaced
            state[prefix + key] = value
    if not family.metadata:
        first = 3 if family.backbone == "convnext_pico" else 1  # after pool[, norm, flatten]
        _linear(state, f"{prefix}head.{first}", EMBEDDING, FC1)
        _linear(state, f"{prefix}head.{first + 2}", FC1, FC2)
        _linear(state, f"{prefix}head.{first + 5}", FC2, 1)
        return state
    n = len(METADATA_FEATURES)
    state["meta_branch.network.0.weight"] = 1 + 0.1 * torch.randn(n)
    state["meta_branch.network.0.bias"] = 0.1 * torch.randn(n)
    state["meta_branch.network.0.running_mean"] = torch.tensor(metadata_mean, dtype=torch.float32)
    state["meta_branch.network.0.running_var"] = torch.tensor(
        metadata_std**2 + 1e-3, dtype=torch.float32
    )
    state["meta_branch.network.0.num_batches_tracked"] = torch.tensor(1000)
    _linear(state, "meta_branch.network.1", n, META_FC1)
    _linear(state, "meta_branch.network.4", META_FC1, META_FC2)
    _linear(state, "combined_head.0", EMBEDDING + META_FC2, COMB_FC1)
    _linear(state, "combined_head.2", COMB_FC1, COMB_FC2)
    _linear(state, "combined_head.5", COMB_FC2, 1)
    return state


_TRAINING = {
    "train_data_version": "v11", "loss": "binary_crossentropy", "learning_rate": 5e-6,
    "warmup_epochs": 2, "beta_1": 0.9, "beta_2": 0.999, "batch_size": 64, "epochs": 25,
    "patience": 5, "N_max": 100, "data_aug_h_flip": 1, "data_aug_v_flip": 1,
    "data_aug_rot": 1, "random_seed": 2, "testing": 0,
}  # fmt: skip


def train_config(family: Family) -> dict[str, Any]:
    """The fields BTSbot's training writes to ``train_config.json`` for this family."""
    image = {
        "model_name": "ConvNeXt" if family.backbone == "convnext_pico" else "MaxViT",
        "model_kind": family.model_kind,
        "pretrained": "randinit" not in family.name,
        "fc1_neurons": FC1,
        "fc2_neurons": FC2,
        "dropout": 0.5,
        **_TRAINING,
    }
    if not family.metadata:
        return image
    columns = list(METADATA_FEATURES)
    return {
        "model_name": "frozen_fusion",
        "image_model_dir": "models/ConvNeXt_v11_N100_cuda/dainty-sweep-1/",
        "meta_model_dir": "models/um_nn_v11_N100_cuda/glad-sweep-2/",
        "image_model_config": image,
        "meta_model_config": {
            "model_name": "um_nn",
            "metadata_cols": columns,
            "meta_fc1_neurons": META_FC1,
            "meta_fc2_neurons": META_FC2,
            "meta_dropout": 0.5,
            **_TRAINING,
        },
        "metadata_cols": columns,
        "comb_fc1_neurons": COMB_FC1,
        "comb_fc2_neurons": COMB_FC2,
        "comb_dropout": 0.5,
        **_TRAINING,
    }


def checkpoint_files(state: dict[str, torch.Tensor], config: dict[str, Any]) -> dict[str, bytes]:
    """The hub repository's files (README omitted: the export never reads it)."""
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return {
        "pytorch_model.bin": buffer.getvalue(),
        "train_config.json": json.dumps(config, indent=2).encode(),
    }


def write_folder(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def fake_revision(repo: str) -> str:
    return hashlib.sha1(repo.encode()).hexdigest()


def write_hub_cache(cache: Path, repo: str, files: dict[str, bytes]) -> str:
    """Lay ``files`` out as huggingface_hub caches a download; return the commit sha.

    ``models--<owner>--<name>/refs/main`` holds the commit; ``snapshots/<commit>/<file>``
    are relative symlinks to ``blobs/<etag>``, where the etag of an LFS file is its
    sha256 and that of a small git file its git blob sha1 (as on the hub).
    """
    revision = fake_revision(repo)
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    snapshot = root / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    (root / "blobs").mkdir(exist_ok=True)
    for name, data in files.items():
        if name.endswith(".bin"):
            etag = hashlib.sha256(data).hexdigest()
        else:
            etag = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
        (root / "blobs" / etag).write_bytes(data)
        link = snapshot / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path("..", "..", "blobs", etag))
    return revision


def offline_env(cache: Path) -> dict[str, str]:
    """Environment for a subprocess that may use the hub cache and nothing else."""
    return os.environ | {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``btsbot-stream ARGS`` in a fresh interpreter, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "btsbot_stream", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
