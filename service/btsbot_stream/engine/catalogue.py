"""The paper's ten pre-trained BTSbot models on the Hugging Face hub, by model name.

Importable without torch: ``btsbot-stream models list`` and the engine use it to say what
can be pulled. The weights themselves are turned into ONNX by :mod:`btsbot_stream.export`
(the ``export`` extra). A model name is the lower-cased hub repository name, e.g.
``nabeelr/BTSbot-convnext-pico-galaxyzoo`` -> ``btsbot-convnext-pico-galaxyzoo``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from btsbot_stream.engine.exceptions import ModelNotFoundError

Backbone = Literal["convnext_pico", "maxvit_tiny_rw_224"]
Pretraining = Literal["galaxyzoo", "in1k", "randinit"]

HUB_OWNER = "nabeelr"
# The production model whose card ships in the package (engine/cards/); listed beside
# the hub models so an operator sees every model the service knows in one place.
BUILTIN_MODEL = "btsbot-v1.0.1"

_PRETRAINING_WORDS: dict[Pretraining, str] = {
    "galaxyzoo": "pre-trained on Galaxy Zoo (Zoobot encoder)",
    "in1k": "pre-trained on ImageNet-1k",
    "randinit": "trained from random initialisation",
}
# Native input of each backbone: the ONNX graph always takes 63x63 stamps, MaxViT
# upsamples inside its own forward (see DESIGN.md, Models).
_BACKBONE_WORDS: dict[Backbone, str] = {
    "convnext_pico": "ConvNeXt-pico at 63x63",
    "maxvit_tiny_rw_224": "MaxViT-tiny (rw) upsampled to 224x224 inside the model",
}


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One published model.

    Attributes
    ----------
    name : str
        Model name used by the service (cards, ``--model``).
    repo : str
        Hugging Face repository id.
    backbone : {"convnext_pico", "maxvit_tiny_rw_224"}
        timm architecture of the image branch.
    pretraining : {"galaxyzoo", "in1k", "randinit"}
        How the backbone was initialised before BTSbot training.
    metadata : bool
        True for the frozen-fusion models that also take the 25 metadata features.
    """

    name: str
    repo: str
    backbone: Backbone
    pretraining: Pretraining
    metadata: bool

    @property
    def architecture(self) -> str:
        return architecture_label(self.backbone, self.metadata)

    @property
    def description(self) -> str:
        inputs = (
            "image triplet + 25 metadata features (frozen fusion)"
            if self.metadata
            else ("image triplet only")
        )
        return (
            f"BTSbot {_BACKBONE_WORDS[self.backbone]}, {_PRETRAINING_WORDS[self.pretraining]}; "
            f"{inputs}; Hugging Face {self.repo}"
        )


def architecture_label(backbone: str, metadata: bool) -> str:
    """The ``architecture`` a model card records for a BTSbot v2 model."""
    return f"frozen_fusion({backbone}+metadata_mlp)" if metadata else backbone


def _entry(backbone: Backbone, pretraining: Pretraining, metadata: bool) -> CatalogueEntry:
    family = "convnext-pico" if backbone == "convnext_pico" else "maxvit-tiny"
    repo_name = f"BTSbot-{family}-{pretraining}" + ("-metadata" if metadata else "")
    return CatalogueEntry(
        name=repo_name.lower(),
        repo=f"{HUB_OWNER}/{repo_name}",
        backbone=backbone,
        pretraining=pretraining,
        metadata=metadata,
    )


_ALL_PRETRAINING: tuple[Pretraining, ...] = ("galaxyzoo", "in1k", "randinit")
# Metadata variants exist for the three convnext-pico models and for maxvit-tiny-galaxyzoo
# only (the paper's set; there is no maxvit in1k/randinit fusion model on the hub).
CATALOGUE: dict[str, CatalogueEntry] = {
    e.name: e
    for e in (
        *(_entry("convnext_pico", p, False) for p in _ALL_PRETRAINING),
        *(_entry("convnext_pico", p, True) for p in _ALL_PRETRAINING),
        *(_entry("maxvit_tiny_rw_224", p, False) for p in _ALL_PRETRAINING),
        _entry("maxvit_tiny_rw_224", "galaxyzoo", True),
    )
}


def catalogue_entry(name: str) -> CatalogueEntry:
    """The hub model called ``name``; raise :class:`ModelNotFoundError` naming the known ones."""
    try:
        return CATALOGUE[name]
    except KeyError:
        known = ", ".join(sorted(CATALOGUE))
        raise ModelNotFoundError(
            f"{name!r} is not one of the published BTSbot models ({known}); "
            "for your own checkpoint use 'btsbot-stream models export --from DIR NAME'"
        ) from None
