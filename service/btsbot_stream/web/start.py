"""Where the window feed starts reading each partition.

What a start costs is what it reads: every message is a whole scored alert (~70 kB with
its cutouts and embedded schema, docs/benchmarks.md), so the count bound applies to all
partitions together, not to each: a topic of P partitions is read for at most
``window_alerts`` messages, not P times that.
"""

from __future__ import annotations

from collections.abc import Sequence


def start_offsets(partitions: Sequence[tuple[int, int, int]], budget: int) -> list[int]:
    """The offset to start each partition at.

    Parameters
    ----------
    partitions
        Per partition ``(first, low, high)``: the first offset published within the
        window's hours (negative: nothing that recent), and the partition's low and high
        watermarks.
    budget
        The most messages to read over all partitions together.

    Returns
    -------
    list of int
        Each partition's start: its ``first``, or, when the partitions together hold
        more than ``budget`` messages since then, its most recent messages, the budget
        shared in proportion to what each holds (keyed by objectId, partitions fill at
        about the same rate, so this is about the most recent ``budget`` overall).
    """
    firsts = [high if first < 0 else min(max(first, low), high) for first, low, high in partitions]
    held = [high - first for first, (_, _, high) in zip(firsts, partitions, strict=True)]
    total = sum(held)
    if total <= budget:
        return firsts
    return [
        high - count * budget // total for count, (_, _, high) in zip(held, partitions, strict=True)
    ]
