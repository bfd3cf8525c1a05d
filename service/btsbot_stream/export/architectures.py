"""The BTSbot v2 architectures (timm backbones + small heads), as PyTorch modules.

Attribute names and ``nn.Sequential`` positions are not free: they are the keys of the
published state_dicts (``convnext.head.3.weight``, ``image_branch.maxvit.stem...``,
``meta_branch.network.0.running_mean``, ``combined_head.5.bias``...), which must load
with ``strict=True``. They follow the public BTSbot code (``btsbot/architectures.py``):

- image models: the timm backbone with its classifier head replaced by
  pool [-> norm -> flatten] -> Linear -> GELU -> Linear -> GELU -> Dropout -> Linear(1);
- frozen fusion: that image model cut after pooling (512-d embedding), the metadata
  MLP (``um_nn``) cut before its last ReLU and Linear, and a combined head
  Linear -> ReLU -> Linear -> ReLU -> Dropout -> Linear(1) on the concatenation.

Every model returns a logit of shape (N, 1). Dropout probabilities are not stored in a
state_dict and do nothing in eval mode, so they are built as 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import timm
import torch
from timm.layers import set_layer_config
from torch import nn

Backbone = Literal["convnext_pico", "maxvit_tiny_rw_224"]
EMBEDDING_WIDTH = 512  # pooled feature width of both backbones
MAXVIT_SIZE = 224  # MaxViT's native input; stamps are upsampled to it inside forward


@dataclass(frozen=True, slots=True)
class FusionSpec:
    """Widths of the frozen-fusion parts beyond the image backbone."""

    meta_fc1: int
    meta_fc2: int
    comb_fc1: int
    comb_fc2: int
    n_features: int


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What to build: a backbone and either an image head or a fusion head."""

    backbone: Backbone
    image_head: tuple[int, int] | None = None  # (fc1, fc2) of an image-only model
    fusion: FusionSpec | None = None

    @property
    def uses_metadata(self) -> bool:
        return self.fusion is not None


def _timm_backbone(name: Backbone) -> nn.Module:
    # exportable=True makes timm choose ONNX-friendly layers (MaxViT attention without
    # F.scaled_dot_product_attention, which the exporter cannot translate for it);
    # pretrained=False: weights come from the BTSbot checkpoint, never from the network.
    with set_layer_config(exportable=True):
        return timm.create_model(name, pretrained=False)


def _classifier(fc1: int, fc2: int) -> list[nn.Module]:
    return [
        nn.Linear(EMBEDDING_WIDTH, fc1), nn.GELU(), nn.Linear(fc1, fc2), nn.GELU(),
        nn.Dropout(0.0), nn.Linear(fc2, 1),
    ]  # fmt: skip


class ConvNeXtImage(nn.Module):
    """convnext_pico on the native 63x63 triplet (its stride-4 stem ignores the last 3
    rows and columns, as in training). ``head=None`` stops at the 512-d embedding."""

    def __init__(self, head: tuple[int, int] | None) -> None:
        super().__init__()
        self.convnext = _timm_backbone("convnext_pico")
        old = self.convnext.head
        layers = [old.global_pool, old.norm, old.flatten]
        self.convnext.head = nn.Sequential(*layers, *(_classifier(*head) if head else ()))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.convnext(image)


class MaxViTImage(nn.Module):
    """maxvit_tiny_rw_224 on the triplet upsampled bilinearly to 224x224 (the ONNX graph
    still takes 63x63). ``head=None`` stops at the 512-d embedding."""

    def __init__(self, head: tuple[int, int] | None) -> None:
        super().__init__()
        self.maxvit = _timm_backbone("maxvit_tiny_rw_224")
        pool = self.maxvit.head.global_pool  # pools and flattens to (N, 512)
        self.maxvit.head = nn.Sequential(pool, *(_classifier(*head) if head else ()))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-2:] != (MAXVIT_SIZE, MAXVIT_SIZE):
            image = nn.functional.interpolate(
                image, size=(MAXVIT_SIZE, MAXVIT_SIZE), mode="bilinear", align_corners=False
            )
        return self.maxvit(image)


class MetadataEmbedding(nn.Module):
    """BTSbot's metadata MLP (``um_nn``) without its last ReLU and Linear. Raw features in:
    the BatchNorm's running statistics do the scaling learnt in training."""

    def __init__(self, n_features: int, fc1: int, fc2: int) -> None:
        super().__init__()
        self.network = nn.Sequential(
            nn.BatchNorm1d(n_features), nn.Linear(n_features, fc1), nn.ReLU(), nn.Dropout(0.0),
            nn.Linear(fc1, fc2),
        )  # fmt: skip

    def forward(self, metadata: torch.Tensor) -> torch.Tensor:
        return self.network(metadata)


class FrozenFusion(nn.Module):
    """Image embedding + metadata embedding, concatenated, through the combined head."""

    def __init__(self, backbone: Backbone, fusion: FusionSpec) -> None:
        super().__init__()
        image_model = ConvNeXtImage if backbone == "convnext_pico" else MaxViTImage
        self.image_branch = image_model(head=None)
        # Not called "meta": the dynamo exporter breaks on a submodule of that name.
        self.meta_branch = MetadataEmbedding(fusion.n_features, fusion.meta_fc1, fusion.meta_fc2)
        self.combined_head = nn.Sequential(
            nn.Linear(EMBEDDING_WIDTH + fusion.meta_fc2, fusion.comb_fc1), nn.ReLU(),
            nn.Linear(fusion.comb_fc1, fusion.comb_fc2), nn.ReLU(), nn.Dropout(0.0),
            nn.Linear(fusion.comb_fc2, 1),
        )  # fmt: skip

    def forward(self, image: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        features = torch.cat((self.image_branch(image), self.meta_branch(metadata)), dim=1)
        return self.combined_head(features)


def build_model(spec: ModelSpec) -> nn.Module:
    """A randomly initialised model for ``spec``, in eval mode, ready for ``load_state_dict``.

    Parameters
    ----------
    spec : ModelSpec
        Backbone and head widths (from ``train_config.json``).

    Returns
    -------
    torch.nn.Module
        ``forward(image)`` or, with metadata, ``forward(image, metadata)``; image is
        (N, 3, 63, 63) float32 NCHW, metadata (N, 25) float32; returns (N, 1) logits.
    """
    if spec.fusion is not None:
        model: nn.Module = FrozenFusion(spec.backbone, spec.fusion)
    elif spec.image_head is not None:
        image_model = ConvNeXtImage if spec.backbone == "convnext_pico" else MaxViTImage
        model = image_model(head=spec.image_head)
    else:
        raise ValueError("a ModelSpec needs an image head or a fusion head")
    return model.eval()
