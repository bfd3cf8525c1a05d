"""A batch of messages on its way through preparation, whichever way it is prepared."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, overload

from btsbot_stream.alerts.exceptions import RegistryUnavailable
from btsbot_stream.scoring import PreparedMessage


class Pending(Protocol):
    """A batch being prepared."""

    def result(self, timeout: float | None = None) -> PreparedBatch:
        """The batch once prepared (waits); raises what preparation raised."""
        ...


@dataclass(eq=False)
class PreparedBatch(Sequence[PreparedMessage]):
    """Messages in submission order, each prepared or waiting for the schema registry
    (a sequence of the prepared messages once none waits).

    While ``registry_down`` names messages, :attr:`messages` refuses to answer: they go
    back to the preparer (``redo``) until the registry answers. Once the batch is scored
    (or dropped), :meth:`release` hands its shared-memory slot back; alerts of a batch
    must not be read after that.
    """

    values: list[bytes]
    prepared: list[PreparedMessage | None] = field(default_factory=list)
    registry_down: dict[int, RegistryUnavailable] = field(default_factory=dict)
    slot: int | None = None  # the shared-memory slot holding its arrays (worker pool)
    on_release: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        if not self.prepared:
            self.prepared = [None] * len(self.values)

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> PreparedMessage: ...

    @overload
    def __getitem__(self, index: slice) -> list[PreparedMessage]: ...

    def __getitem__(self, index: int | slice) -> PreparedMessage | list[PreparedMessage]:
        return self.messages[index]

    def __iter__(self) -> Iterator[PreparedMessage]:
        return iter(self.messages)

    @property
    def messages(self) -> list[PreparedMessage]:
        if self.registry_down:
            raise RuntimeError(f"{len(self.registry_down)} messages still wait for the registry")
        messages = [m for m in self.prepared if m is not None]
        if len(messages) != len(self.values):
            raise RuntimeError("a message of the batch was never prepared")
        return messages

    def release(self) -> None:
        """Hand the batch's slot back (idempotent)."""
        on_release, self.on_release = self.on_release, None
        if on_release is not None:
            on_release()
