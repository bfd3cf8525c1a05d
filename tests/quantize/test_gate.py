"""The gate's arithmetic on hand-made scores, labels, the split rule, and the model
repository's handling of gate reports (no model run here)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from btsbot_stream.engine.cards import all_cards, builtin_cards, repository_cards, write_card
from btsbot_stream.quantize.dataset import (
    AlertSet,
    read_labels,
    split_by_object,
    without_objects,
)
from btsbot_stream.quantize.exceptions import DatasetError
from btsbot_stream.quantize.gate import auc, decisions, differences, failures, label_result
from btsbot_stream.quantize.report import GateLimits

CANDIDS = (11, 12, 13, 14, 15)
PARENT = np.array([0.49, 0.51, 0.86, 0.50, 0.10], dtype=np.float32)
VARIANT = np.array([0.51, 0.49, 0.84, 0.50, 0.10], dtype=np.float32)


def test_flips_are_counted_per_threshold_and_direction():
    limits = GateLimits()
    at_half, at_085 = decisions(PARENT, VARIANT, CANDIDS, limits)
    assert (at_half.parent_positive, at_half.variant_positive) == (2, 2)  # 0.50 is negative
    assert (at_half.flips, at_half.flipped_to_positive, at_half.flipped_to_negative) == (2, 1, 1)
    assert at_half.flipped_candids == (11, 12)
    assert at_half.near == 3  # 0.49, 0.51 and 0.50 lie within 0.05 of 0.5
    assert (at_085.flips, at_085.flipped_to_negative, at_085.flipped_candids) == (1, 1, (13,))


def test_differences_and_verdict():
    diffs = differences(PARENT, VARIANT, CANDIDS)
    assert diffs.max_abs == pytest.approx(0.02, abs=1e-6)
    assert diffs.worst_candid in (11, 12, 13)
    limits = GateLimits(max_abs_diff=0.05, max_flips=2, min_held_out=5)
    thresholds = decisions(PARENT, VARIANT, CANDIDS, limits)
    assert failures(5, diffs, thresholds, limits) == []
    strict = GateLimits(max_abs_diff=0.01, max_flips=0, min_held_out=6)
    found = failures(5, diffs, decisions(PARENT, VARIANT, CANDIDS, strict), strict)
    assert len(found) == 4  # too few alerts, difference, flips at 0.5 and at 0.85
    assert "only 5 held-out alerts" in found[0]


def test_auc_counts_pairs_and_half_ties():
    scores = np.array([0.9, 0.4, 0.5, 0.1, 0.4])
    positive = np.array([True, True, False, False, False])
    # pairs: 0.9 beats all three; 0.4 beats 0.1, loses to 0.5, ties 0.4
    assert auc(scores, positive) == pytest.approx((3 + 1 + 0.5) / 6)


def test_labels_positive_only_give_no_auc_but_a_ranking_against_the_rest():
    labels = {13: 1, 14: 1}
    result = label_result(labels, "LABELS.csv", CANDIDS, PARENT, VARIANT, (0.5, 0.85))
    assert (result.labelled, result.positives, result.negatives) == (2, 2, 0)
    assert result.auc is None
    assert result.recall["0.5"] == {"parent": 0.5, "variant": 0.5}
    assert result.recall["0.85"] == {"parent": 0.5, "variant": 0.0}
    assert result.auc_positive_vs_unlabelled is not None
    assert "no labelled negatives, so no AUC" in result.note


def test_labels_of_both_classes_give_an_auc():
    labels = {13: 1, 12: 1, 15: 0, 11: 0}
    result = label_result(labels, "labels.csv", CANDIDS, PARENT, VARIANT, (0.5,))
    assert result.auc == {"parent": 1.0, "variant": 0.75}  # variant: 0.49 < 0.51
    assert result.auc_positive_vs_unlabelled is None


def test_labels_file(tmp_path: Path):
    positives = tmp_path / "LABELS.csv"
    positives.write_text("objectId,candid,bts_type\nZTF1,101,SN Ia\nZTF2,102,TDE\n")
    assert read_labels(positives) == {101: 1, 102: 1}
    both = tmp_path / "both.csv"
    both.write_text("candid,label\n101,1\n103,0\n")
    assert read_labels(both) == {101: 1, 103: 0}
    bad = tmp_path / "bad.csv"
    bad.write_text("candid,label\n101,2\n")
    with pytest.raises(DatasetError, match="0/1 'label'"):
        read_labels(bad)


def _alerts(object_ids: list[str]) -> AlertSet:
    n = len(object_ids)
    return AlertSet(
        np.zeros((n, 63, 63, 3), np.float32),
        np.arange(n * 25, dtype=np.float32).reshape(n, 25),
        tuple(object_ids),
        tuple(range(1000, 1000 + n)),
        ("somewhere",),
    )


def test_split_keeps_each_object_on_one_side_by_its_hash():
    object_ids = [f"ZTF20{name}" for name in "abcdefghijklmnopqrst"] * 2
    calibration, held_out = split_by_object(_alerts(object_ids), 0.5)
    assert not set(calibration.object_ids) & set(held_out.object_ids)
    assert len(calibration) + len(held_out) == len(object_ids)
    for object_id in set(object_ids):  # the documented rule, computed here
        fraction = int(hashlib.sha256(object_id.encode()).hexdigest()[:16], 16) / 2**64
        side = calibration if fraction < 0.5 else held_out
        assert object_ids.count(object_id) == side.object_ids.count(object_id)
    for part in (calibration, held_out):  # each row travels with its alert
        assert [int(row[0]) // 25 for row in part.metadata] == [c - 1000 for c in part.candids]


def test_explicit_held_out_loses_its_calibration_objects():
    held, dropped = without_objects(_alerts(["a", "b", "a", "c"]), ["a", "z"])
    assert (held.object_ids, dropped) == (("b", "c"), 2)
    assert held.candids == (1001, 1003)


def test_gate_reports_are_not_cards(tmp_path: Path):
    card = builtin_cards()["btsbot-v1.0.1"].model_copy(update={"name": "copy"})
    write_card(card, tmp_path)
    (tmp_path / "copy.gate.json").write_text('{"verdict": "passed"}')
    assert list(repository_cards(tmp_path)) == ["copy"]
    assert "btsbot-v1.0.1" in all_cards(tmp_path)
