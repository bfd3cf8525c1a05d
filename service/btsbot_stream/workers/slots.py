"""Shared-memory slots: the batch arrays workers write prepared alerts into.

A slot holds one batch, ``rows`` alerts: the triplets ``(rows, 63, 63, 3)`` and the
metadata ``(rows, 25)``, float32, one after the other in one
:class:`multiprocessing.shared_memory.SharedMemory` block. The parent creates a fixed
number of them (memory is bounded; a batch waits for a free slot), reserves their
pages at once (a full ``/dev/shm`` is an error at start, not a SIGBUS in a worker
later), and unlinks them at close; a parent killed outright leaves them to
multiprocessing's resource tracker, which unlinks what is left when the last process
using it exits.
"""

from __future__ import annotations

import contextlib
import os
from multiprocessing.shared_memory import SharedMemory

import numpy as np

from btsbot_stream.alerts.features import METADATA_FEATURES
from btsbot_stream.alerts.prepare import Rows
from btsbot_stream.workers.exceptions import WorkerPoolError

SIDE = 63
TRIPLET_FLOATS = SIDE * SIDE * 3
METADATA_FLOATS = len(METADATA_FEATURES)
ROW_BYTES = (TRIPLET_FLOATS + METADATA_FLOATS) * 4
SHM_DIR = "/dev/shm"


def slot_bytes(rows: int) -> int:
    return rows * ROW_BYTES


def views(shm: SharedMemory, rows: int) -> Rows:
    """A slot's two arrays over its shared memory (no copy)."""
    triplets = np.ndarray((rows, SIDE, SIDE, 3), np.float32, shm.buf, 0)
    metadata = np.ndarray((rows, METADATA_FLOATS), np.float32, shm.buf, rows * TRIPLET_FLOATS * 4)
    return Rows(triplets, metadata)


def attach(name: str, rows: int) -> tuple[SharedMemory, Rows]:
    """A worker's view of a slot the parent made."""
    shm = SharedMemory(name=name)
    return shm, views(shm, rows)


class SlotArena:
    """``count`` slots of ``rows`` alerts each, and one input buffer of ``input_bytes`` per
    worker (the raw messages of its task; the parent writes them, the worker reads), made
    and owned by the parent."""

    def __init__(self, count: int, rows: int, workers: int = 0, input_bytes: int = 0) -> None:
        self.rows_per_slot = rows
        sizes = [slot_bytes(rows)] * count + [input_bytes] * workers
        _check_room(sum(sizes), count, rows, workers, input_bytes)
        self._blocks: list[SharedMemory] = []
        try:
            for size in sizes:
                shm = SharedMemory(create=True, size=size)
                self._blocks.append(shm)
                _reserve(shm, size, sum(sizes), count, rows, workers, input_bytes)
        except BaseException:
            self.close()
            raise
        self._count = count
        self.rows: list[Rows] = [views(shm, rows) for shm in self._blocks[:count]]

    @property
    def names(self) -> tuple[str, ...]:
        """The slots' names."""
        return tuple(shm.name for shm in self._blocks[: self._count])

    @property
    def input_names(self) -> tuple[str, ...]:
        """The input buffers' names, one per worker index."""
        return tuple(shm.name for shm in self._blocks[self._count :])

    def input_buffer(self, worker: int) -> memoryview:
        buf = self._blocks[self._count + worker].buf
        assert buf is not None
        return buf

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        """Unlink every block (the memory goes once no process maps it)."""
        self.rows = []
        for shm in self._blocks:
            with contextlib.suppress(BufferError):  # a view still exported; the unlink counts
                shm.close()
            with contextlib.suppress(FileNotFoundError):
                shm.unlink()
        self._blocks = []


def _advice(needed: int, count: int, rows: int, workers: int, input_bytes: int) -> str:
    return (
        f"preparation needs {needed / 2**20:.0f} MiB of shared memory ({count} slots x "
        f"{rows} alerts x {ROW_BYTES / 1000:.1f} kB, {workers} workers x "
        f"{input_bytes / 2**20:.1f} MiB of input): give the container a larger /dev/shm "
        "(docker run --shm-size, compose shm_size, Kubernetes an emptyDir with medium: "
        "Memory mounted at /dev/shm), or lower preparation.slots, preparation.processes "
        "or engine.batch_size, or set preparation.processes = 0 (no shared memory)"
    )


def _check_room(needed: int, *layout: int) -> None:
    if not os.path.isdir(SHM_DIR):
        return
    stat = os.statvfs(SHM_DIR)
    free = stat.f_bavail * stat.f_frsize
    if free < needed:
        have = f"{SHM_DIR} has {free / 2**20:.0f} MiB free; "
        raise WorkerPoolError(have + _advice(needed, *layout))


def _reserve(shm: SharedMemory, size: int, needed: int, *layout: int) -> None:
    """Allocate the block's pages now, so running out of room fails here, at start."""
    fd = getattr(shm, "_fd", -1)  # the block's file descriptor (POSIX)
    if fd < 0 or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        raise WorkerPoolError(f"{exc.strerror}; " + _advice(needed, *layout)) from None
