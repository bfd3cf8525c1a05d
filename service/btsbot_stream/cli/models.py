"""``btsbot-stream models``: the model repository (list, pull, export, quantize, verify).

``pull`` and ``export`` need PyTorch and timm (the ``export`` extra), ``quantize`` needs
onnx (the ``quantize`` extra); they import their builders only when run, so ``list``,
``verify`` and the rest of the CLI work without them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from btsbot_stream.cli import options
from btsbot_stream.cli.quantize import quantize
from btsbot_stream.engine.cards import ModelCard, all_cards, model_path
from btsbot_stream.engine.catalogue import BUILTIN_MODEL, CATALOGUE
from btsbot_stream.engine.exceptions import ModelIntegrityError
from btsbot_stream.engine.model import OnnxModel, load_model
from btsbot_stream.export import DEFAULT_OPSET
from btsbot_stream.export.examples import InputSet, load_examples, random_inputs
from btsbot_stream.export.exceptions import ExportError
from btsbot_stream.quantize.report import load_gate_report

_EXTRA = {"torch", "timm", "onnx", "onnxscript"}

examples_dir = click.option(
    "--examples",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar="BTSBOT_EXAMPLES_DIR",
    show_envvar=True,
    help="BTSbot example set (usage_triplets.npy + usage_candidates.csv) to check on real "
    "triplets; without it, random inputs only.",
)
opset = click.option(
    "--opset",
    type=click.IntRange(min=17),
    default=DEFAULT_OPSET,
    show_default=True,
    envvar="BTSBOT_EXPORT_OPSET",
    show_envvar=True,
    help="ONNX opset of the exported graph.",
)


def _exporter() -> ModuleType:
    try:
        from btsbot_stream.export import build
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in _EXTRA:
            raise ExportError(
                f"exporting needs PyTorch and timm ({exc.name} is missing): install the "
                "export extra: pip install 'btsbot-stream[export]'"
            ) from exc
        raise
    return build


@click.group()
def models() -> None:
    """The model repository: which models exist, pulling, exporting and quantizing them,
    checking them."""


models.add_command(quantize)


_LIST_COLUMNS = ("model", "inputs", "architecture", "present", "source", "version", "parity")


@models.command("list")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="BTSBOT_MODELS_LIST_JSON",
    show_envvar=True,
    help="A JSON array of models (one object per model) instead of a table.",
)
@options.models_dir
def list_models(as_json: bool, models_dir: Path) -> None:
    """Every known model (the ten published ones, the built-in one, any exported ones).

    A table on a terminal; tab-separated lines with a header when stdout is a pipe or a
    file, so scripts can cut it; ``--json`` for anything more.
    """
    rows = _model_rows(models_dir)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif sys.stdout.isatty():
        table = Table(title=f"BTSbot models (models directory: {models_dir})")
        for column in _LIST_COLUMNS:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*_cells(row))
        Console().print(table)
    else:
        click.echo("\t".join(_LIST_COLUMNS))
        for row in rows:
            click.echo("\t".join(_cells(row)))


def _cells(row: dict[str, Any]) -> list[str]:
    """A row as the table and the plain output show it."""
    present = "yes" if row["present"] else "no (card only)" if row["card"] else "no"
    # parity with the framework for exported models; the fidelity gate for variants
    parity = row["gate"] or (f"{row['parity']:.1e}" if row["parity"] is not None else "-")
    shown = row | {"present": present, "parity": parity, "version": row["version"] or "-"}
    return [str(shown[column]) for column in _LIST_COLUMNS]


def _model_rows(models_dir: Path) -> list[dict[str, Any]]:
    """One dict per known model: the published catalogue, the built-in one, then any
    other card in ``models_dir``."""
    cards = all_cards(models_dir)
    names = [*CATALOGUE, BUILTIN_MODEL, *sorted(set(cards) - set(CATALOGUE) - {BUILTIN_MODEL})]
    rows = []
    for name in names:
        card, entry = cards.get(name), CATALOGUE.get(name)
        if card is not None:
            file_present = model_path(card, models_dir).is_file()
            row = {
                "model": name,
                "inputs": "image+metadata" if card.uses_metadata else "image",
                "architecture": card.architecture,
                "present": file_present,
                "card": True,
                "source": card.source.repo or card.source.path or card.source.kind,
                "version": card.version,
                "parity": card.export.parity_max_abs if card.export else None,
                "gate": _gate(card, models_dir),
                "file": str(model_path(card, models_dir)) if file_present else None,
                "sha256": card.sha256,
            }
        elif entry is not None:
            row = {
                "model": name,
                "inputs": "image+metadata" if entry.metadata else "image",
                "architecture": entry.architecture,
                "present": False,
                "card": False,
                "source": entry.repo,
                "version": None,
                "parity": None,
                "gate": None,
                "file": None,
                "sha256": None,
            }
        else:  # pragma: no cover - every name comes from one of the two
            continue
        rows.append(row)
    return rows


@models.command()
@click.argument("name")
@click.option(
    "--revision",
    envvar="BTSBOT_MODEL_REVISION",
    show_envvar=True,
    help="Hub branch, tag or commit sha  [default: main]",
)
@examples_dir
@opset
@options.models_dir
def pull(
    name: str, revision: str | None, examples: Path | None, opset: int, models_dir: Path
) -> None:
    """Download a published model from the Hugging Face hub and export it to ONNX.

    Uses the huggingface_hub cache (HF_HUB_CACHE); with HF_HUB_OFFLINE=1 only the cache.
    """
    result = _exporter().pull(name, models_dir, revision, examples, opset)
    _report_export(result.card, result.onnx_path, result.parity)


@models.command("export")
@click.option(
    "--from",
    "folder",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar="BTSBOT_EXPORT_FROM",
    show_envvar=True,
    help="Checkpoint folder in the hub layout (pytorch_model.bin + train_config.json).",
)
@click.argument("name")
@examples_dir
@opset
@options.models_dir
def export_model(
    folder: Path, name: str, examples: Path | None, opset: int, models_dir: Path
) -> None:
    """Export a local checkpoint folder to ONNX as model NAME."""
    result = _exporter().export_folder(folder, name, models_dir, examples, opset)
    _report_export(result.card, result.onnx_path, result.parity)


def _gate(card: ModelCard, models_dir: Path) -> str | None:
    """The fidelity gate's summary of a derived variant (None for other models)."""
    if card.derived_from is None:
        return None
    try:
        return load_gate_report(card, models_dir).summary()
    except ModelIntegrityError as exc:
        return f"report unusable: {exc}"


def _report_export(card: ModelCard, onnx_path: Path, parity: dict[str, float]) -> None:
    click.echo(f"exported {card.name} -> {onnx_path} (sha256 {card.sha256})")
    for inputs, error in parity.items():
        click.echo(f"  parity on {inputs}: max |onnx - torch| logit = {error:.2g}")


@models.command()
@click.argument("name")
@examples_dir
@options.models_dir
def verify(name: str, examples: Path | None, models_dir: Path) -> None:
    """Re-check a stored model against its card: sha256, graph inputs and outputs, and a
    run on a few triplets (batch 1 and a larger batch must agree)."""
    model = load_model(name, models_dir, device="cpu")  # checks sha256 and graph names
    _check_shapes(model)
    inputs = load_examples(examples) if examples else random_inputs(4, seed=0)
    if len(inputs.triplets) > 8:
        inputs = InputSet(f"first 8 of the {inputs.name}", inputs.triplets[:8], inputs.metadata[:8])
    batch = model.predict(inputs.triplets, inputs.metadata)
    single = model.predict(inputs.triplets[:1], inputs.metadata[:1])
    if not (np.all(np.isfinite(batch)) and np.all((batch >= 0) & (batch <= 1))):
        raise ModelIntegrityError(f"model {name!r} returned scores outside [0, 1]: {batch}")
    if abs(float(single[0]) - float(batch[0])) > 1e-5:
        raise ModelIntegrityError(
            f"model {name!r} scores the same triplet {single[0]} alone and {batch[0]} in a batch"
        )
    click.echo(
        f"ok: {name} ({model.card.file}, sha256 {model.card.sha256[:16]}...) scored "
        f"{len(batch)} triplets ({inputs.name}): {np.array2string(batch, precision=4)}"
    )
    if model.card.derived_from is not None:
        _verify_derivation(model.card, models_dir)


def _verify_derivation(card: ModelCard, models_dir: Path) -> None:
    """A variant also needs its gate report, and a parent that is still the one gated."""
    assert card.derived_from is not None
    report = load_gate_report(card, models_dir)
    parent = all_cards(models_dir).get(card.derived_from.parent)
    if parent is not None and parent.sha256 != card.derived_from.parent_sha256:
        raise ModelIntegrityError(
            f"model {card.name!r} was gated against {parent.name} with sha256 "
            f"{card.derived_from.parent_sha256}, the models directory now has "
            f"{parent.sha256}: quantize it again"
        )
    click.echo(report.render())


def _check_shapes(model: OnnxModel) -> None:
    card = model.card
    image = (3, 63, 63) if card.image_layout == "NCHW" else (63, 63, 3)
    wanted = {card.image_input: image} | (
        {card.metadata_input: (25,)} if card.metadata_input else {}
    )
    for graph_input in model.session.get_inputs():
        shape = tuple(graph_input.shape)
        batch_is_fixed = isinstance(shape[0], int) if shape else True
        if shape[1:] != wanted[graph_input.name] or batch_is_fixed:
            raise ModelIntegrityError(
                f"model {card.name!r}: input {graph_input.name!r} has shape {list(shape)}, "
                f"expected [batch, {', '.join(map(str, wanted[graph_input.name]))}]"
            )
        if graph_input.type != f"tensor({'float' if card.input_dtype == 'float32' else 'float16'})":
            raise ModelIntegrityError(
                f"model {card.name!r}: input {graph_input.name!r} is {graph_input.type}, the "
                f"card says {card.input_dtype}"
            )
