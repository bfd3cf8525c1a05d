"""Alert packets from files: single .avro files, folders, nightly .tar.gz archives.

Yields the bytes of each packet with an ``origin`` that says where it came from
(``path`` or ``archive.tar.gz:member``); an archive that cannot be read yields one
failure item instead of stopping the run.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from btsbot_stream.alerts.exceptions import Reject

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
PACKET_SUFFIXES = (".avro",)


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One packet's bytes, or why a file could not be read."""

    origin: str
    data: bytes = b""
    failure: Reject | None = None


def _is_archive(path: Path) -> bool:
    return path.name.endswith(ARCHIVE_SUFFIXES)


def _read_archive(path: Path) -> Iterator[SourceItem]:
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if not member.isfile() or not member.name.endswith(PACKET_SUFFIXES):
                    continue
                handle = archive.extractfile(member)
                if handle is not None:
                    yield SourceItem(f"{path}:{member.name}", handle.read())
    except (tarfile.TarError, OSError, EOFError) as exc:
        yield SourceItem(str(path), failure=Reject("avro_truncated", f"archive unreadable: {exc}"))


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files to read, folders walked recursively in name order; unknown suffixes skipped."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and (p.name.endswith(PACKET_SUFFIXES) or _is_archive(p))
            )
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"input {path} does not exist")
    return files


def read_items(files: Iterable[Path]) -> Iterator[SourceItem]:
    """Every packet of every file, in order."""
    for path in files:
        if _is_archive(path):
            yield from _read_archive(path)
        else:
            yield SourceItem(str(path), path.read_bytes())
