"""A bounded memory of what was already shown, to drop at-least-once repeats.

The scored topic can carry an alert twice after the service restarts (see the delivery
notes in docs/design.md). Repeats arrive soon after the original, so remembering the
last ``capacity`` keys is enough; the oldest are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable


class RecentKeys:
    def __init__(self, capacity: int, initial: Iterable[Hashable] = ()) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        for key in initial:
            self.add(key)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: Hashable) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)
