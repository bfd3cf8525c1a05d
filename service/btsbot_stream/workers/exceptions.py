"""Process-level failures of the preparation workers."""

from btsbot_stream.errors import BtsbotError


class WorkerPoolError(BtsbotError):
    """The worker pool cannot go on: workers that cannot start or keep dying outside any
    message, shared memory too small, a process-level error inside a worker, or the pool
    closed while a batch waited. The message says what happened and what to fix."""
