"""Exceptions of the export package. All are process-level: the export stops, nothing is
installed in the models directory, and the message says what to fix."""

from __future__ import annotations

from collections.abc import Sequence

from btsbot_stream.errors import BtsbotError


class ExportError(BtsbotError):
    """Base class of export errors."""


class DownloadError(ExportError):
    """The hub (or its local cache, when offline) could not provide the checkpoint."""


class CheckpointError(ExportError):
    """A checkpoint file is missing, truncated, corrupt or not a plain state_dict."""


class TrainConfigError(ExportError):
    """``train_config.json`` is missing, unreadable or describes an unsupported model."""


class StateDictMismatchError(CheckpointError):
    """The state_dict does not fit the architecture: keys missing, unexpected or misshapen.

    Parameters
    ----------
    source : str
        The checkpoint file, for the message.
    missing, unexpected : sequence of str
        Keys the architecture needs and the file lacks; keys the file has and the
        architecture does not know.
    misshapen : sequence of str
        ``"key: file (a, b) vs model (c, d)"`` descriptions.
    """

    def __init__(
        self,
        source: str,
        missing: Sequence[str],
        unexpected: Sequence[str],
        misshapen: Sequence[str] = (),
    ) -> None:
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.misshapen = list(misshapen)
        parts = []
        if self.missing:
            parts.append(f"missing keys: {_some(self.missing, ', ')}")
        if self.unexpected:
            parts.append(f"unexpected keys: {_some(self.unexpected, ', ')}")
        if self.misshapen:
            parts.append(f"shape mismatches: {_some(self.misshapen, '; ')}")
        super().__init__(
            f"{source} does not match the architecture its train_config.json describes "
            f"({'; '.join(parts)}); the checkpoint is damaged or belongs to another model"
        )


def _some(items: Sequence[str], separator: str, limit: int = 20) -> str:
    # A checkpoint of another architecture mismatches hundreds of keys: name the first
    # ones (the full lists stay on the exception).
    shown = separator.join(items[:limit])
    return shown + (f"{separator}... ({len(items) - limit} more)" if len(items) > limit else "")


class ParityError(ExportError):
    """The ONNX graph disagrees with PyTorch beyond the tolerance on the logit."""
