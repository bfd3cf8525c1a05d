"""Model cards: everything the service must know about a model file to score with it.

A card is a JSON file named ``<model name>.json``. Cards written by ``btsbot-stream
export`` sit next to their ``.onnx`` file in the models directory (like a Triton model
repository); cards for models we did not export ourselves (the production
``btsbot-v1.0.1``) are built into the package and find their ``.onnx`` in the models
directory. A card in the models directory wins over a built-in card of the same name.

A reduced-precision variant made by ``btsbot-stream models quantize`` is a model like any
other, with one more record, ``derived_from``: its parent and how it was made. Its gate
report (``<name>.gate.json``) sits next to its card and is not a card.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from btsbot_stream.engine.exceptions import ModelIntegrityError, ModelNotFoundError

CARD_SUFFIX = ".json"
GATE_REPORT_SUFFIX = ".gate.json"  # a variant's fidelity report, beside its card


class ModelSource(BaseModel):
    """Where the weights came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["hub", "local", "published"]
    repo: str | None = None  # Hugging Face repo id, or a URL for published artefacts
    revision: str | None = None  # commit sha of the hub repo, when known
    path: str | None = None  # local folder it was exported from
    checkpoint_sha256: str | None = None  # sha256 of the framework weights file exported


class ExportRecord(BaseModel):
    """How the ONNX file was made, and how close it is to the framework it came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tool_versions: dict[str, str]
    opset: int
    parity_max_abs: float = Field(description="max |onnx - framework| on the logit/prob")
    parity_inputs: str = Field(description="what the parity was measured on")
    exported_at: str | None = None


class CalibrationRecord(BaseModel):
    """Which real alerts calibrated an int8 variant (the gate report lists them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alerts: int
    objects: int
    candids_sha256: str = Field(description="sha256 of the sorted candids, one per line")
    inputs_sha256: str = Field(description="sha256 of the prepared inputs, in feed order")
    split: str = Field(description="how these alerts were told apart from the held-out ones")
    sources: tuple[str, ...]


class GateRecord(BaseModel):
    """The fidelity gate the variant passed; the full report is the file ``report``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    report: str
    report_sha256: str
    held_out_alerts: int
    max_abs_diff: float
    flips: dict[str, int] = Field(description="decision threshold -> alerts that flipped")


class Derivation(BaseModel):
    """How a reduced-precision variant was made from its parent model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    parent: str
    parent_sha256: str
    precision: Literal["int8", "fp16", "bf16"]
    method: str
    settings: dict[str, str | float | bool]
    reduced_nodes: tuple[str, ...] = Field(description="nodes computing in reduced precision")
    fp32_nodes: tuple[str, ...] = Field(
        description="Conv/MatMul/Gemm nodes left in float32 (every other node is float32 too)"
    )
    calibration: CalibrationRecord | None = None  # int8 only
    gate: GateRecord
    tool_versions: dict[str, str]
    made_at: str


class ModelCard(BaseModel):
    """Facts about one model. Field names are the card's JSON keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str
    description: str = ""
    file: str
    sha256: str
    architecture: str
    image_input: str
    image_layout: Literal["NHWC", "NCHW"]
    input_dtype: Literal["float32", "float16"] = "float32"
    metadata_input: str | None = None
    metadata_features: tuple[str, ...] | None = None
    output: str
    output_kind: Literal["probability", "logit"]
    preprocessing: str = "btsbot-triplet-v1"
    source: ModelSource
    export: ExportRecord | None = None
    recommended_max_batch: int = Field(default=256, ge=1)
    derived_from: Derivation | None = None

    @property
    def uses_metadata(self) -> bool:
        return self.metadata_input is not None

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True) + "\n"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def builtin_cards() -> dict[str, ModelCard]:
    """Cards shipped inside the package, by model name."""
    folder = resources.files("btsbot_stream.engine") / "cards"
    cards = {}
    for entry in folder.iterdir():
        if entry.name.endswith(CARD_SUFFIX):
            card = ModelCard.model_validate_json(entry.read_text())
            cards[card.name] = card
    return cards


def repository_cards(models_dir: Path) -> dict[str, ModelCard]:
    """Cards found in a models directory, by model name."""
    cards = {}
    if models_dir.is_dir():
        for path in sorted(models_dir.glob("*" + CARD_SUFFIX)):
            if path.name.endswith(GATE_REPORT_SUFFIX):
                continue
            try:
                card = ModelCard.model_validate_json(path.read_text())
            except ValueError as exc:
                raise ModelIntegrityError(f"model card {path} is invalid: {exc}") from exc
            cards[card.name] = card
    return cards


def all_cards(models_dir: Path) -> dict[str, ModelCard]:
    """Built-in cards overridden by the models directory's own."""
    return builtin_cards() | repository_cards(models_dir)


def find_card(name: str, models_dir: Path) -> ModelCard:
    cards = all_cards(models_dir)
    if name not in cards:
        known = ", ".join(sorted(cards)) or "none"
        raise ModelNotFoundError(
            f"no model card named {name!r} (known: {known}); "
            f"export it with 'btsbot-stream models pull {name}' or check --models-dir"
        )
    return cards[name]


def model_path(card: ModelCard, models_dir: Path) -> Path:
    return models_dir / card.file


def verify_file(card: ModelCard, models_dir: Path) -> Path:
    """Return the model file's path after checking it exists and matches the card's sha256."""
    path = model_path(card, models_dir)
    if not path.is_file():
        raise ModelNotFoundError(
            f"model {card.name!r}: file {path} not found; put {card.file} in the models "
            f"directory (--models-dir / BTSBOT_ENGINE__MODELS_DIR, now {models_dir})"
        )
    actual = sha256_of(path)
    if actual != card.sha256:
        raise ModelIntegrityError(
            f"model {card.name!r}: {path} has sha256 {actual}, the card says {card.sha256}; "
            "the file is corrupt or belongs to another model: re-export or re-download it"
        )
    return path


def write_card(card: ModelCard, models_dir: Path) -> Path:
    """Write a card atomically next to its model file."""
    path = models_dir / f"{card.name}{CARD_SUFFIX}"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(card.to_json())
    tmp.replace(path)
    return path
