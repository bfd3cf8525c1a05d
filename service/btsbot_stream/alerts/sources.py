"""Alert packets from files: single .avro files, folders, nightly .tar.gz archives.

Yields the bytes of each packet with an ``origin`` that says where it came from
(``path`` or ``archive.tar.gz:member``). Nothing here stops a run: a file or member over
``limits.max_message_bytes`` is refused by its size before it is read, a file that cannot
be read and an archive that breaks part-way each yield one failure item (after the
members read before the damage).
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from btsbot_stream.alerts.exceptions import Reject
from btsbot_stream.config import LimitSettings

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
PACKET_SUFFIXES = (".avro",)
MAX_MESSAGE_BYTES = LimitSettings().max_message_bytes  # the setting's one default


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One packet's bytes, or why a file could not be read."""

    origin: str
    data: bytes = b""
    failure: Reject | None = None


def _is_archive(path: Path) -> bool:
    return path.name.endswith(ARCHIVE_SUFFIXES)


def _too_large(origin: str, size: int, max_bytes: int) -> SourceItem:
    detail = f"{size} bytes exceeds limits.max_message_bytes = {max_bytes}"
    return SourceItem(origin, failure=Reject("message_too_large", detail))


def _read_archive(path: Path, max_bytes: int) -> Iterator[SourceItem]:
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if not member.isfile() or not member.name.endswith(PACKET_SUFFIXES):
                    continue
                origin = f"{path}:{member.name}"
                if member.size > max_bytes:
                    yield _too_large(origin, member.size, max_bytes)
                    continue
                handle = archive.extractfile(member)
                if handle is not None:
                    yield SourceItem(origin, handle.read())
    except Exception as exc:  # tarfile, gzip, zlib and OS errors of a damaged archive
        detail = f"archive unreadable: {type(exc).__name__}: {exc}"
        yield SourceItem(str(path), failure=Reject("input_unreadable", detail))


def _read_file(path: Path, max_bytes: int) -> SourceItem:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return _too_large(str(path), size, max_bytes)
        return SourceItem(str(path), path.read_bytes())
    except OSError as exc:
        return SourceItem(str(path), failure=Reject("input_unreadable", f"{exc}"))


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


def read_items(files: Iterable[Path], max_bytes: int = MAX_MESSAGE_BYTES) -> Iterator[SourceItem]:
    """Every packet of every file, in order; ``max_bytes``: ``limits.max_message_bytes``."""
    for path in files:
        if _is_archive(path):
            yield from _read_archive(path, max_bytes)
        else:
            yield _read_file(path, max_bytes)
