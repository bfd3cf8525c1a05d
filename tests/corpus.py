"""Helpers to walk the shared ZTF corpus in tests (no code under test here)."""

from __future__ import annotations

import tarfile
from pathlib import Path


def alert_files(ztf: Path, folder: str = "alerts") -> list[Path]:
    return sorted((ztf / folder).rglob("*.avro"))


def packets_in(path: Path) -> int:
    """How many packets a file holds as the tests count them: archive members or 1."""
    if path.name.endswith(".tar.gz"):
        with tarfile.open(path) as archive:
            return sum(1 for m in archive if m.isfile() and m.name.endswith(".avro"))
    return 1
