"""One export, start to finish: checkpoint -> ONNX checked against PyTorch -> card.

``pull`` (hub) and ``export_folder`` (local folder) differ only in where the two files
come from. Nothing reaches the models directory until the graph has passed parity: the
ONNX file and its card are written into a hidden temporary folder inside the models
directory and renamed into place at the end (same file system, so each rename is
atomic); a failure at any step leaves the directory as it was.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from btsbot_stream.alerts.features import METADATA_FEATURES
from btsbot_stream.engine.cards import (
    CARD_SUFFIX,
    ExportRecord,
    ModelCard,
    ModelSource,
    builtin_cards,
    sha256_of,
)
from btsbot_stream.engine.catalogue import (
    CATALOGUE,
    CatalogueEntry,
    architecture_label,
    catalogue_entry,
)
from btsbot_stream.export import DEFAULT_OPSET, hub
from btsbot_stream.export.architectures import ModelSpec, build_model
from btsbot_stream.export.checkpoints import (
    load_state_dict,
    load_weights,
    parse_train_config,
    read_json,
)
from btsbot_stream.export.examples import InputSet, load_examples, random_inputs
from btsbot_stream.export.exceptions import ExportError, TrainConfigError
from btsbot_stream.export.onnx_export import (
    IMAGE_INPUT,
    METADATA_INPUT,
    OUTPUT,
    export_onnx,
    measure_parity,
)

log = logging.getLogger(__name__)

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
# MaxViT runs at 224x224: ~18 GB of RAM at batch 256 on CPU, so keep its batches small.
_MAX_BATCH = {"convnext_pico": 256, "maxvit_tiny_rw_224": 16}
RANDOM_BATCHES = (1, 64)
_TOOLS = ("torch", "timm", "onnx", "onnxscript", "onnxruntime", "btsbot-stream")


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What an export installed: the card, its files, and the parity per input set."""

    card: ModelCard
    onnx_path: Path
    card_path: Path
    parity: dict[str, float]


def pull(
    name: str,
    models_dir: Path,
    revision: str | None = None,
    examples: Path | None = None,
    opset: int = DEFAULT_OPSET,
) -> ExportResult:
    """Download a published model (or take it from the hub cache) and export it."""
    entry = catalogue_entry(name)
    return export_checkpoint(name, hub.from_hub(entry.repo, revision), models_dir, examples, opset)


def export_folder(
    folder: Path,
    name: str,
    models_dir: Path,
    examples: Path | None = None,
    opset: int = DEFAULT_OPSET,
) -> ExportResult:
    """Export a checkpoint folder in the hub layout."""
    return export_checkpoint(name, hub.from_folder(folder), models_dir, examples, opset)


def export_checkpoint(
    name: str,
    files: hub.CheckpointFiles,
    models_dir: Path,
    examples: Path | None,
    opset: int,
) -> ExportResult:
    """Build, load, export, check parity, then install ``<name>.onnx`` + ``<name>.json``.

    Parameters
    ----------
    name : str
        Model name (lower case, digits, ``.-_``); a catalogue name is checked against
        the architecture its train_config describes.
    files : hub.CheckpointFiles
        The checkpoint's weights and train_config.
    models_dir : Path
        Model repository to install into (created if missing).
    examples : Path, optional
        Folder with the BTSbot example set; without it parity uses random inputs only.
    opset : int
        ONNX opset.
    """
    _check_name(name)
    config = read_json(files.config)
    state = load_state_dict(files.weights)
    spec = parse_train_config(config, {k: tuple(v.shape) for k, v in state.items()})
    entry = CATALOGUE.get(name)
    if entry is not None:
        _check_family(entry, spec)
    model = build_model(spec)
    load_weights(model, state, str(files.weights))
    input_sets = _parity_inputs(examples)

    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        staging = tempfile.TemporaryDirectory(prefix=f".{name}.", dir=models_dir)
    except OSError as exc:
        raise ExportError(f"cannot write to the models directory {models_dir}: {exc}") from exc
    with staging as tmp:
        staged = Path(tmp) / f"{name}.onnx"
        export_onnx(model, spec.uses_metadata, staged, opset)
        parity = measure_parity(model, staged, spec.uses_metadata, input_sets)
        card = _card(name, spec, files, staged, parity, opset, entry)
        staged_card = Path(tmp) / f"{name}{CARD_SUFFIX}"
        staged_card.write_text(card.to_json())
        onnx_path, card_path = models_dir / card.file, models_dir / staged_card.name
        os.replace(staged, onnx_path)  # the model first: a card never points at nothing
        os.replace(staged_card, card_path)
    log.info("exported %s to %s (parity %s)", name, onnx_path, parity)
    return ExportResult(card=card, onnx_path=onnx_path, card_path=card_path, parity=parity)


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ExportError(
            f"model name {name!r} must be lower-case letters, digits, '.', '-' or '_'"
        )
    if name in builtin_cards():
        raise ExportError(f"{name!r} is a built-in model; choose another name")


def _check_family(entry: CatalogueEntry, spec: ModelSpec) -> None:
    # Catches a folder exported under the wrong published name.
    if (entry.backbone, entry.metadata) != (spec.backbone, spec.uses_metadata):
        raise TrainConfigError(
            f"{entry.name} is a {entry.backbone} model{' with metadata' * entry.metadata}, "
            f"but train_config.json describes a {spec.backbone} model"
            f"{' with metadata' * spec.uses_metadata}; is this the right checkpoint?"
        )


def _parity_inputs(examples: Path | None) -> list[InputSet]:
    sets: list[InputSet] = []
    pool = None
    if examples is not None:
        real = load_examples(examples)
        sets.append(real)
        pool = real.metadata
    else:
        log.warning("no example set given: parity is measured on random inputs only")
    sets += [random_inputs(n, seed=n, metadata_pool=pool) for n in RANDOM_BATCHES]
    return sets


def _card(
    name: str,
    spec: ModelSpec,
    files: hub.CheckpointFiles,
    onnx_file: Path,
    parity: dict[str, float],
    opset: int,
    entry: CatalogueEntry | None,
) -> ModelCard:
    checkpoint_sha = sha256_of(files.weights)
    if files.repo is not None:
        source = ModelSource(
            kind="hub", repo=files.repo, revision=files.revision, checkpoint_sha256=checkpoint_sha
        )
        version_label = (files.revision or "main")[:12]
    else:
        folder = str(files.weights.parent.resolve())
        source = ModelSource(kind="local", path=folder, checkpoint_sha256=checkpoint_sha)
        version_label = f"local-{checkpoint_sha[:12]}"
    fusion = spec.uses_metadata
    architecture = architecture_label(spec.backbone, fusion)
    return ModelCard(
        name=name,
        version=version_label,
        description=entry.description if entry else f"BTSbot {architecture} from {files.weights}",
        file=onnx_file.name,
        sha256=sha256_of(onnx_file),
        architecture=architecture,
        image_input=IMAGE_INPUT,
        image_layout="NCHW",
        input_dtype="float32",
        metadata_input=METADATA_INPUT if fusion else None,
        metadata_features=METADATA_FEATURES if fusion else None,
        output=OUTPUT,
        output_kind="logit",
        source=source,
        export=ExportRecord(
            tool_versions={tool: version(tool) for tool in _TOOLS},
            opset=opset,
            parity_max_abs=max(parity.values()),
            parity_inputs="max |onnx - torch| on the logit, CPU float32: "
            + "; ".join(f"{k}: {v:.2g}" for k, v in parity.items()),
            exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
        ),
        recommended_max_batch=_MAX_BATCH[spec.backbone],
    )
