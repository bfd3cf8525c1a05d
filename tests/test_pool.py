"""Preparation in worker processes gives what preparation in this process gives: the
same records, bit-identical triplets and metadata, the same datum and schema, the same
reasons, and the same scores, on real alerts (the demo sample, the shared corpus) and on
every kind of hostile message; and the batch arrays reach the models without a copy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import pool_support
from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.prepare import Prepared, Rows
from btsbot_stream.config import EngineSettings
from btsbot_stream.scoring import (
    Scorer,
    load_scorer,
    model_inputs,
    prepare_message,
)
from btsbot_stream.workers import Decoding, WorkerPool, prepare_ahead
from corpus import AlertSet
from hostile import hostile_messages, packets_of

ROWS = 64  # small batches: many slots reused, several tasks per batch


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    with WorkerPool(Decoding(), processes=2, slots=3, rows=ROWS) as workers:
        yield workers


@pytest.fixture(scope="module")
def scorer(models_dir: Path) -> Scorer:
    engine = EngineSettings(models_dir=models_dir, device="cpu", batch_size=ROWS, warmup=False)
    return load_scorer(engine)


def _compare(
    values: list[bytes], names: list[str], pool: WorkerPool, scorer: Scorer | None = None
) -> list[str]:
    decoder = AlertDecoder()
    problems = []
    chunks = [list(range(i, min(i + ROWS, len(values)))) for i in range(0, len(values), ROWS)]
    for chunk, batch in prepare_ahead(pool, chunks, lambda c: [values[i] for i in c]):
        try:
            inline = [prepare_message(decoder, values[i]) for i in chunk]
            pooled = list(batch)
            for i, mine, theirs in zip(chunk, inline, pooled, strict=True):
                difference = pool_support.difference(mine, theirs)
                if difference:
                    problems.append(f"{names[i]}: {difference}")
            if scorer is not None:
                for i, mine, theirs in zip(
                    chunk, scorer.score(inline), scorer.score(pooled), strict=True
                ):
                    got = [(o.reject, o.scores.keys()) for o in theirs]
                    if [(o.reject, o.scores.keys()) for o in mine] != got:
                        problems.append(f"{names[i]}: outcomes differ")
                    for a, b in zip(mine, theirs, strict=True):
                        for model, p in a.scores.items():
                            if abs(p - b.scores[model]) > 1e-6:
                                problems.append(f"{names[i]}: score {p} != {b.scores[model]}")
        finally:
            batch.release()
    return problems


def test_real_alerts_prepare_the_same_in_workers(real_alerts: AlertSet, pool, scorer):
    values = [path.read_bytes() for path in real_alerts.files]
    names = [path.name for path in real_alerts.files]
    problems = _compare(values, names, pool, scorer)
    assert not problems, "\n".join(problems[:20])


def test_the_demo_sample_odd_packets_included(demo_alerts: Path, pool, scorer):
    files = sorted(demo_alerts.rglob("*.avro"))
    assert any("odd" in f.parts for f in files)
    problems = _compare([f.read_bytes() for f in files], [f.name for f in files], pool, scorer)
    assert not problems, "\n".join(problems[:20])


def test_hostile_messages_have_the_same_outcomes_in_workers(demo_alerts: Path, pool):
    files = sorted(p for p in demo_alerts.rglob("*.avro") if "odd" not in p.parts)
    cases = list(hostile_messages(packets_of(files), per_packet=4, seed=8))
    assert len(cases) > 300 and any(c.name.startswith("bomb-") for c in cases)
    problems = _compare([c.data for c in cases], [c.name for c in cases], pool)
    assert not problems, f"{len(problems)} of {len(cases)}:\n" + "\n".join(problems[:20])


def test_a_batch_reaches_the_models_as_the_slot_itself(demo_alerts: Path, pool):
    files = sorted(p for p in demo_alerts.rglob("*.avro") if "odd" not in p.parts)
    batch = pool.submit([f.read_bytes() for f in files]).result()
    try:
        valid = [p for m in batch for _, p in m.records if isinstance(p, Prepared)]
        triplets, metadata, positions = model_inputs(valid)
        rows = valid[0].rows
        assert rows is not None
        # one JPEG prototype leaves a hole: scored along, its row's score ignored
        assert positions is not None and len(positions) == len(valid) == len(files) - 1
        assert np.shares_memory(triplets, rows.triplets) and np.shares_memory(
            metadata, rows.metadata
        )
        assert triplets.flags.c_contiguous and triplets.dtype == np.float32
    finally:
        batch.release()


def test_model_inputs_gather_rows_when_holes_are_many():
    rows = Rows(
        np.random.rand(16, 63, 63, 3).astype(np.float32), np.random.rand(16, 25).astype(np.float32)
    )
    every = [Prepared(rows.triplets[i], rows.metadata[i], rows, i) for i in range(16)]
    triplets, _, positions = model_inputs(every)
    assert positions is None and np.shares_memory(triplets, rows.triplets) and len(triplets) == 16
    sparse = every[::4]  # 4 alerts over a span of 13 rows: gathered into a copy
    triplets, metadata, positions = model_inputs(sparse)
    assert positions is None and not np.shares_memory(triplets, rows.triplets)
    assert np.array_equal(triplets, rows.triplets[::4]) and np.array_equal(
        metadata, rows.metadata[::4]
    )
    plain = [Prepared(p.triplet.copy(), p.metadata.copy()) for p in every[:3]]
    triplets, _, positions = model_inputs(plain)
    assert positions is None and np.array_equal(triplets, rows.triplets[:3])
