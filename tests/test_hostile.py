"""Hostile and damaged messages (``tests/hostile.py``, made from the demo sample and the
shared corpus) through decode, preparation and the production model: each has exactly
one outcome, the reason it must have, no exception, in bounded time and memory.

Time and memory are measured per message: wall time against a hang detector (the
unbounded versions of these inputs take minutes), the peak of Python-traced allocations
(numpy and zlib buffers included) against a ceiling far below what the bombs demand.
The process-wide figures for the bombs are in ``test_bomb_memory.py``.
"""

from __future__ import annotations

import time
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.config import EngineSettings
from btsbot_stream.scoring import PreparedMessage, Scorer, load_scorer, prepare_message
from corpus import AlertSet
from hostile import Hostile, hostile_messages, packets_of

CASE_SECONDS = 5.0  # per message, on a loaded 2-core machine; real alerts take ~1 ms
CASE_PEAK_BYTES = 64 << 20  # per message; the bombs demand 1 to 6 GiB, or loop for minutes
PER_PACKET = {"demo": 12, "shared": 4}  # byte flips per real packet
KINDS = (
    "cut",
    "flip-magic",
    "flip-schema-utf8",
    "flip-sync",
    "flip-stamp",
    "codec-not-utf8",
    "schema-nested",
    "bomb-stamp-2GiB",
    "bomb-records",
    "bomb-array-null",
    "bomb-recursive",
    "fits-d-exponent",
    "fits-extension",
    "record-history-jd-null",
    "record-sgscore1-nan",
)


@pytest.fixture(scope="module")
def scorer(models_dir: Path) -> Scorer:
    engine = EngineSettings(models_dir=models_dir, device="cpu", batch_size=64, warmup=False)
    return load_scorer(engine)


def _prepare_measured(decoder: AlertDecoder, case: Hostile) -> tuple[PreparedMessage, str | None]:
    """The prepared message, and what was wrong with how it was made (or None)."""
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    try:
        message = prepare_message(decoder, case.data)
    except Exception as exc:  # the boundary must hold: report the case by name
        pytest.fail(f"{case.name}: prepare_message raised {exc!r}")
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - before
    if elapsed > CASE_SECONDS:
        return message, f"took {elapsed:.1f} s"
    if peak > CASE_PEAK_BYTES:
        return message, f"peaked at {peak >> 20} MiB"
    return message, None


def _judge(case: Hostile, outcomes: list) -> str | None:
    if len(outcomes) != 1:
        return f"{len(outcomes)} outcomes"
    reject = outcomes[0].reject
    reason = reject.reason if reject else None
    if reason == "internal_error":  # every one of these inputs is foreseen
        return f"internal_error: {reject.detail}"
    if case.must_reject and (reason is None or (case.reasons and reason not in case.reasons)):
        return f"got {reason or 'scored'}, expected one of {sorted(case.reasons) or 'any reason'}"
    if case.must_score and reason is not None:
        return f"rejected ({reason}: {reject.detail}), must be scored"
    return None


def test_every_hostile_message_has_one_outcome(real_alerts: AlertSet, scorer: Scorer):
    packets = packets_of(real_alerts.files)
    assert len(packets) >= real_alerts.fits_alerts - 10  # nearly every real packet is used
    cases = list(hostile_messages(packets, PER_PACKET[real_alerts.name], seed=8))
    decoder = AlertDecoder()
    problems: list[str] = []
    reasons: Counter[str] = Counter()
    tracemalloc.start()
    try:
        for start in range(0, len(cases), 64):
            chunk = cases[start : start + 64]
            prepared = []
            for case in chunk:
                message, problem = _prepare_measured(decoder, case)
                prepared.append(message)
                if problem:
                    problems.append(f"{case.name}: {problem}")
            for case, outcomes in zip(chunk, scorer.score(prepared), strict=True):
                problem = _judge(case, outcomes)
                if problem:
                    problems.append(f"{case.name}: {problem}")
                reasons[outcomes[0].reject.reason if outcomes[0].reject else "scored"] += 1
    finally:
        tracemalloc.stop()
    assert not problems, f"{len(problems)} of {len(cases)} cases:\n" + "\n".join(problems[:30])
    seen = {c.name for c in cases}
    for kind in KINDS:  # the generator still makes every kind
        assert any(name.startswith(kind) for name in seen), kind
    assert reasons["scored"] > 0 and len(reasons) >= 12, reasons
