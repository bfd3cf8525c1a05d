"""Where the tests find real data, and helpers to walk it (no code under test here).

The repository ships the production model (``models/``), the authors' 39 preprocessed
examples (``tests/data/btsbot-example``) and the demo sample of real alerts
(``deploy/demo/alerts``). The team's large corpus (556 real alerts of every schema
version, odd inputs, the official schemas) lives outside the repository, at
``BTSBOT_SHARED`` (default ``../shared`` beside it).
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import pytest

REPO = Path(__file__).resolve().parents[1]
REPO_MODELS = REPO / "models"
DEMO_ALERTS = REPO / "deploy" / "demo" / "alerts"
EXAMPLE_DIR = REPO / "tests" / "data" / "btsbot-example"
DEMO_FITS = 29  # the demo sample's 30 packets outside odd/, less one JPEG prototype
SHARED_FITS = 550  # the shared corpus's 556 real alerts less the 6 JPEG prototypes


def shared_root() -> Path:
    return Path(os.environ.get("BTSBOT_SHARED", REPO.parent / "shared")).resolve()


def shared_present() -> bool:
    return (shared_root() / "data" / "ztf" / "alerts").is_dir()


def shared_required() -> bool:
    """CI sets BTSBOT_REQUIRE_SHARED=1: the corpus missing is then a failure."""
    return os.environ.get("BTSBOT_REQUIRE_SHARED") == "1"


def missing_message() -> str:
    return (
        f"shared corpus not found at {shared_root()}: the tests that need the large real-alert "
        "corpus are skipped (set BTSBOT_SHARED to the folder holding data/ztf; "
        "BTSBOT_REQUIRE_SHARED=1 makes its absence a failure, as in CI)"
    )


def require_shared() -> Path:
    """The shared corpus's root, or skip (fail under BTSBOT_REQUIRE_SHARED=1)."""
    if not shared_present():
        if shared_required():
            pytest.fail(missing_message())
        pytest.skip(missing_message())
    return shared_root()


@dataclass(frozen=True)
class AlertSet:
    """Real alert packets (one record each) to hold an invariant over.

    ``name`` is ``demo`` (the shipped sample: always there) or ``shared`` (the corpus);
    ``fits_alerts`` is how many carry FITS stamps (the others are 2016-18 JPEG
    prototypes), so a test can check that it saw them all.
    """

    name: str
    files: list[Path]
    fits_alerts: int


def alert_set(name: str) -> AlertSet:
    if name == "demo":
        files = sorted(p for p in DEMO_ALERTS.rglob("*.avro") if "odd" not in p.parts)
        return AlertSet("demo", files, DEMO_FITS)
    files = sorted((require_shared() / "data" / "ztf" / "alerts").rglob("*.avro"))
    return AlertSet("shared", files, SHARED_FITS)


def fits_records(root: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(writer schema, record) of every single-record packet under ``root`` whose stamps are
    FITS, in file-name order (``odd/`` and JPEG prototypes left out): the stuff that test
    streams are made of."""
    out = []
    for path in sorted(root.rglob("*.avro")):
        if "odd" in path.parts:
            continue  # cut short, stripped stamps: dead letters
        with path.open("rb") as fh:
            reader = fastavro.reader(fh)
            (record,) = reader
        if record["cutoutScience"]["stampData"][:2] != b"\xff\xd8":
            out.append((reader.writer_schema, record))
    return out


def alert_files(ztf: Path, folder: str = "alerts") -> list[Path]:
    return sorted((ztf / folder).rglob("*.avro"))


def packets_in(path: Path) -> int:
    """How many packets a file holds as the tests count them: archive members or 1."""
    if path.name.endswith(".tar.gz"):
        with tarfile.open(path) as archive:
            return sum(1 for m in archive if m.isfile() and m.name.endswith(".avro"))
    return 1
