"""The fidelity gate: a variant against its parent on held-out real alerts.

Both models score the same prepared alerts through the engine the service uses
(:class:`~btsbot_stream.engine.model.OnnxModel`, same provider and threads). The variant
passes when, on at least ``min_held_out`` alerts, no score moves by more than
``max_abs_diff`` and no more than ``max_flips`` alerts change their decision at any
threshold. Labels, where given, are reported (recall, AUC), never gated on: with a
handful of labelled alerts a difference in recall is one alert, which the flips already
count.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from btsbot_stream.engine.model import OnnxModel
from btsbot_stream.quantize.dataset import AlertSet
from btsbot_stream.quantize.report import (
    Differences,
    GateLimits,
    LabelResult,
    Speed,
    ThresholdResult,
)

SPEED_ROUNDS = 3  # timed passes of each model for the report


def differences(parent: np.ndarray, variant: np.ndarray, candids: tuple[int, ...]) -> Differences:
    gap = np.abs(variant.astype(np.float64) - parent.astype(np.float64))
    worst = int(np.argmax(gap))
    return Differences(
        max_abs=float(gap[worst]),
        mean_abs=float(gap.mean()),
        p99_abs=float(np.quantile(gap, 0.99)),
        worst_candid=candids[worst],
    )


def decisions(
    parent: np.ndarray, variant: np.ndarray, candids: tuple[int, ...], limits: GateLimits
) -> tuple[ThresholdResult, ...]:
    """Flips at each threshold; positive means score > threshold (0.5 itself is negative,
    as ``numpy.rint`` decides in BTSbot's policies)."""
    results = []
    for threshold in limits.thresholds:
        before, after = parent > threshold, variant > threshold
        flipped = np.flatnonzero(before != after)
        results.append(
            ThresholdResult(
                threshold=threshold,
                parent_positive=int(before.sum()),
                variant_positive=int(after.sum()),
                flips=len(flipped),
                flipped_to_positive=int((after & ~before).sum()),
                flipped_to_negative=int((before & ~after).sum()),
                near=int((np.abs(parent - threshold) <= limits.max_abs_diff).sum()),
                flipped_candids=tuple(candids[i] for i in flipped),
            )
        )
    return tuple(results)


def failures(
    n_held_out: int,
    diffs: Differences | None,
    thresholds: tuple[ThresholdResult, ...],
    limits: GateLimits,
) -> list[str]:
    """Why the variant fails the gate (empty: it passes)."""
    found = []
    if n_held_out < limits.min_held_out:
        found.append(f"only {n_held_out} held-out alerts, at least {limits.min_held_out} needed")
    if diffs is not None and diffs.max_abs > limits.max_abs_diff:
        found.append(f"max |difference| {diffs.max_abs:.4g} > {limits.max_abs_diff:g}")
    for t in thresholds:
        if t.flips > limits.max_flips:
            found.append(f"{t.flips} decision flips at {t.threshold:g} > {limits.max_flips}")
    return found


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random
    negative (ties count half)."""
    gap = scores[positive][:, None] - scores[~positive][None, :]
    return float(np.mean((gap > 0) + 0.5 * (gap == 0)))


def label_result(
    labels: dict[int, int],
    file: str,
    candids: tuple[int, ...],
    parent: np.ndarray,
    variant: np.ndarray,
    thresholds: tuple[float, ...],
) -> LabelResult:
    label = np.array([labels.get(c, -1) for c in candids])
    pos, neg = label == 1, label == 0
    scores = {"parent": parent, "variant": variant}
    recall = {
        f"{t:g}": {k: float((s[pos] > t).mean()) for k, s in scores.items()}
        for t in thresholds
        if pos.any()
    }
    result = LabelResult(
        file=file,
        labelled=int((label >= 0).sum()),
        positives=int(pos.sum()),
        negatives=int(neg.sum()),
        recall=recall,
        note="",
    )
    both = pos.any() and neg.any()
    if both:
        result = result.model_copy(
            update={"auc": {k: auc(s[pos | neg], pos[pos | neg]) for k, s in scores.items()}}
        )
    elif pos.any() and (label == -1).any():
        result = result.model_copy(
            update={"auc_positive_vs_unlabelled": {k: auc(s, pos) for k, s in scores.items()}}
        )
    return result.model_copy(update={"note": _label_note(result)})


def _label_note(result: LabelResult) -> str:
    head = (
        f"{result.labelled} held-out alerts labelled ({result.positives} positive, "
        f"{result.negatives} negative)"
    )
    recall = "; ".join(
        f"recall at {t}: parent {r['parent']:.3f}, variant {r['variant']:.3f}"
        for t, r in result.recall.items()
    )
    if result.auc is not None:
        tail = f"AUC parent {result.auc['parent']:.4f}, variant {result.auc['variant']:.4f}"
    elif result.auc_positive_vs_unlabelled is not None:
        pu = result.auc_positive_vs_unlabelled
        tail = (
            "no labelled negatives, so no AUC; ranking of the labelled positives above the "
            f"unlabelled rest (mostly, not surely, negatives): parent {pu['parent']:.4f}, "
            f"variant {pu['variant']:.4f}"
        )
    else:
        tail = "one class only: no AUC"
    return "; ".join(part for part in (head, recall, tail) if part)


def speed(parent: OnnxModel, variant: OnnxModel, alerts: AlertSet, rounds: int) -> Speed:
    """Model-only alerts/s of both on the held-out inputs, alternating (median of
    ``rounds``), so both see the same machine load."""
    timings: dict[str, list[float]] = {"parent": [], "variant": []}
    models = {"parent": parent, "variant": variant}
    for model in models.values():
        model.predict(alerts.triplets[:8], alerts.metadata[:8])  # warm-up
    for _ in range(rounds):
        for key, model in models.items():
            start = time.perf_counter()
            model.predict(alerts.triplets, alerts.metadata)
            timings[key].append(time.perf_counter() - start)
    rate = {key: len(alerts) / statistics.median(t) for key, t in timings.items()}
    return Speed(
        parent_alerts_per_s=rate["parent"],
        variant_alerts_per_s=rate["variant"],
        ratio=rate["variant"] / rate["parent"],
        note=f"model only, batch {variant.max_batch}, while gating; not a benchmark",
    )
