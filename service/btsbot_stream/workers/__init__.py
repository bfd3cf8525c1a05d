"""Preparation (decode + stamps + features) across processes, issue #12.

:func:`make_preparer` gives the preparer the settings ask for: :class:`WorkerPool`
(worker processes writing into shared-memory slots) or :class:`InlinePreparer` (a thread
of this process). Imports go ``cli, stream -> workers -> scoring -> alerts``.
"""

from btsbot_stream.workers import cores, slots
from btsbot_stream.workers.batch import Pending, PreparedBatch
from btsbot_stream.workers.cores import available_cores, resolve_processes
from btsbot_stream.workers.decoding import Decoding
from btsbot_stream.workers.exceptions import WorkerPoolError
from btsbot_stream.workers.pool import WorkerPool
from btsbot_stream.workers.preparers import (
    InlinePreparer,
    Preparer,
    make_preparer,
    prepare_ahead,
)

__all__ = [
    "Decoding",
    "InlinePreparer",
    "Pending",
    "PreparedBatch",
    "Preparer",
    "WorkerPool",
    "WorkerPoolError",
    "available_cores",
    "cores",
    "make_preparer",
    "prepare_ahead",
    "resolve_processes",
    "slots",
]
