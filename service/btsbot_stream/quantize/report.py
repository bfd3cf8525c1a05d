"""The fidelity gate's report: what was compared, on which alerts, and the verdict.

Stored as ``<variant>.gate.json`` beside the variant's card (whose ``derived_from.gate``
holds its sha256), printed by ``models quantize`` whether the gate passed or not, and
shown by ``models list`` and ``models verify``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from btsbot_stream.engine.cards import ModelCard, sha256_of
from btsbot_stream.engine.exceptions import ModelIntegrityError

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class GateLimits(BaseModel):
    """What the variant must meet against its parent on the held-out alerts."""

    model_config = _FROZEN

    max_abs_diff: float = Field(default=0.05, ge=0.0, description="max |variant - parent|")
    max_flips: int = Field(default=0, ge=0, description="decision flips allowed per threshold")
    thresholds: tuple[float, ...] = Field(default=(0.5, 0.85), min_length=1)
    min_held_out: int = Field(default=100, ge=1, description="fewer held-out alerts: fail")


class ModelRef(BaseModel):
    model_config = _FROZEN

    name: str
    file: str
    sha256: str


class AlertSetRecord(BaseModel):
    """A set of alerts, precisely enough to rebuild it (the candids are listed)."""

    model_config = _FROZEN

    alerts: int
    objects: int
    unscorable_in_sources: int = Field(description="packets there that cannot be scored")
    dropped_shared_objects: int = Field(
        default=0, description="held-out alerts left out: their object is in the calibration"
    )
    rule: str
    sources: tuple[str, ...]
    candids_sha256: str
    inputs_sha256: str
    candids: tuple[int, ...]


class Differences(BaseModel):
    model_config = _FROZEN

    max_abs: float
    mean_abs: float
    p99_abs: float
    worst_candid: int


class ThresholdResult(BaseModel):
    """Decisions at one threshold (positive: score > threshold, as BTSbot's policies)."""

    model_config = _FROZEN

    threshold: float
    parent_positive: int
    variant_positive: int
    flips: int
    flipped_to_positive: int
    flipped_to_negative: int
    near: int = Field(description="alerts whose parent score is within max_abs_diff of it")
    flipped_candids: tuple[int, ...]


class LabelResult(BaseModel):
    """The held-out alerts that carry a label (matched by candid)."""

    model_config = _FROZEN

    file: str
    labelled: int
    positives: int
    negatives: int
    recall: dict[str, dict[str, float]] = Field(
        description="threshold -> {parent, variant}: share of labelled positives above it"
    )
    auc: dict[str, float] | None = Field(
        default=None, description="{parent, variant}; only when both classes are labelled"
    )
    auc_positive_vs_unlabelled: dict[str, float] | None = Field(
        default=None,
        description="positives-only labels: how well each model ranks the labelled "
        "positives above the unlabelled held-out alerts",
    )
    note: str


class Speed(BaseModel):
    model_config = _FROZEN

    parent_alerts_per_s: float
    variant_alerts_per_s: float
    ratio: float
    note: str


class GateReport(BaseModel):
    model_config = _FROZEN

    verdict: Literal["passed", "failed"]
    failures: tuple[str, ...]
    parent: ModelRef
    variant: ModelRef
    precision: str
    provider: str | None
    limits: GateLimits
    calibration: AlertSetRecord | None
    held_out: AlertSetRecord
    differences: Differences | None
    thresholds: tuple[ThresholdResult, ...]
    labels: LabelResult | None
    speed: Speed | None
    tool_versions: dict[str, str]
    made_at: str

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    def summary(self) -> str:
        """One line: what ``models list`` shows."""
        if self.differences is None:
            return f"{self.verdict}: did not run"
        flips = "/".join(str(t.flips) for t in self.thresholds)
        at = "/".join(f"{t.threshold:g}" for t in self.thresholds)
        return (
            f"{self.verdict}: max|d| {self.differences.max_abs:.3f}, flips {flips} at {at}, "
            f"{self.held_out.alerts} held out"
        )

    def render(self) -> str:
        """The report as text, for the terminal."""
        lines = [
            f"fidelity gate: {self.variant.name} ({self.precision}) against {self.parent.name} "
            f"on {self.held_out.alerts} held-out alerts ({self.held_out.objects} objects), "
            f"{self.provider or 'no provider'}: {self.verdict.upper()}"
        ]
        lines += [f"  FAILED: {failure}" for failure in self.failures]
        if self.differences is not None:
            d = self.differences
            lines.append(
                f"  |variant - parent|: max {d.max_abs:.3g} (limit {self.limits.max_abs_diff:g}, "
                f"candid {d.worst_candid}), p99 {d.p99_abs:.3g}, mean {d.mean_abs:.3g}"
            )
        for t in self.thresholds:
            lines.append(
                f"  threshold {t.threshold:g}: positive parent {t.parent_positive}, variant "
                f"{t.variant_positive}; flips {t.flips} (limit {self.limits.max_flips}); "
                f"{t.near} within {self.limits.max_abs_diff:g} of it"
                + (f"; flipped {list(t.flipped_candids)}" if t.flipped_candids else "")
            )
        if self.labels is not None:
            lines.append(f"  labels ({self.labels.file}): {self.labels.note}")
        if self.speed is not None:
            s = self.speed
            lines.append(
                f"  speed: parent {s.parent_alerts_per_s:,.0f}/s, variant "
                f"{s.variant_alerts_per_s:,.0f}/s: {s.ratio:.2f}x ({s.note})"
            )
        for label, record in (("calibration", self.calibration), ("held out", self.held_out)):
            if record is not None:
                lines.append(
                    f"  {label}: {record.alerts} alerts, {record.objects} objects, "
                    f"{record.unscorable_in_sources} unscorable packets in the sources"
                    + (
                        f", {record.dropped_shared_objects} dropped (object in calibration)"
                        if record.dropped_shared_objects
                        else ""
                    )
                    + f"; candids sha256 {record.candids_sha256[:16]}...; {record.rule}"
                )
        return "\n".join(lines)


def load_gate_report(card: ModelCard, models_dir: Path) -> GateReport:
    """A variant's gate report, checked against the sha256 its card records."""
    assert card.derived_from is not None
    record = card.derived_from.gate
    path = models_dir / record.report
    if not path.is_file():
        raise ModelIntegrityError(f"model {card.name!r}: its gate report {path} is missing")
    if sha256_of(path) != record.report_sha256:
        raise ModelIntegrityError(
            f"model {card.name!r}: {path} has sha256 {sha256_of(path)}, the card says "
            f"{record.report_sha256}; the report was changed after the gate"
        )
    report = GateReport.model_validate_json(path.read_text())
    if report.variant.sha256 != card.sha256 or not report.passed:
        raise ModelIntegrityError(
            f"model {card.name!r}: {path} is a {report.verdict} gate of a file with sha256 "
            f"{report.variant.sha256}, not of {card.file} ({card.sha256})"
        )
    return report
