"""Exceptions of the quantize package (process-level: nothing is installed, and the
message says what to fix)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from btsbot_stream.errors import BtsbotError

if TYPE_CHECKING:
    from btsbot_stream.quantize.report import GateReport


class QuantizeError(BtsbotError):
    """Base class of quantize errors."""


class DatasetError(QuantizeError):
    """The calibration or held-out alerts (or the labels) cannot be used."""


class GateFailedError(QuantizeError):
    """The variant is not faithful enough to its parent; nothing was written.

    Parameters
    ----------
    report : GateReport
        The full report (printed by the CLI before the error).
    """

    def __init__(self, report: GateReport) -> None:
        self.report = report
        super().__init__(
            f"{report.variant.name} failed the fidelity gate against {report.parent.name} "
            f"({'; '.join(report.failures)}); nothing was written"
        )
