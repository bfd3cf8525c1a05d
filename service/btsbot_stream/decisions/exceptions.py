"""Exceptions of the decisions package."""

from btsbot_stream.errors import BtsbotError


class DecisionError(BtsbotError):
    """Base class of decision errors."""


class StateFormatError(DecisionError):
    """A stored object state does not have the layout this version writes (a store
    written by an incompatible version: clear the stage's state and changelog)."""
