"""Exceptions of the engine package (all process-level: they stop the service at start)."""

from btsbot_stream.errors import BtsbotError


class EngineError(BtsbotError):
    """Base class of engine errors."""


class ModelNotFoundError(EngineError):
    """No card or no model file for a requested model name."""


class ModelIntegrityError(EngineError):
    """A model file does not match the sha256 recorded in its card, or its graph disagrees
    with the card (input or output names)."""


class ProviderError(EngineError):
    """A requested execution provider (CUDA, TensorRT) is not available or was not used."""
