"""Each alert's score, as the batched pipeline hands it back, against an independent path:
the plain reference implementation (``alerts/reference.py``: fastavro.reader, astropy,
numpy) feeding the model one alert at a time. Also the batch boundary: an input the
model turns into a non-finite score is rejected alone, the rest keep their scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from btsbot_stream.alerts import reference
from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.prepare import Prepared
from btsbot_stream.config import EngineSettings
from btsbot_stream.scoring import PreparedMessage, Scorer, load_scorer, prepare_message
from corpus import alert_set

MODEL = "btsbot-v1.0.1"


@pytest.fixture(scope="module")
def scorer(models_dir: Path) -> Scorer:
    return load_scorer(EngineSettings(models_dir=models_dir, device="cpu", warmup=False))


def _reference_scores(blobs: list[bytes], scorer: Scorer) -> dict[int, float]:
    """candid -> score, one alert per model call, preprocessing by the plain path."""
    (model,) = scorer.models
    scores = {}
    for data in blobs:
        for alert in reference.read_alerts(data):
            triplet = reference.triplet(alert)[np.newaxis]
            metadata = reference.metadata(alert)[np.newaxis]
            scores[int(alert["candid"])] = float(model.predict(triplet, metadata)[0])
    return scores


def test_each_alert_gets_its_own_score(scorer: Scorer):
    real_alerts = alert_set("demo")
    blobs = [p.read_bytes() for p in real_alerts.files]
    decoder = AlertDecoder()
    messages = [prepare_message(decoder, data) for data in blobs]
    scorable = [
        data
        for data, message in zip(blobs, messages, strict=True)
        if message.records and isinstance(message.records[0][1], Prepared)
    ]
    assert len(scorable) == real_alerts.fits_alerts
    expected = _reference_scores(scorable, scorer)
    got = {}
    for outcomes in scorer.score(messages):  # one batch: the scores are scattered back
        for outcome in outcomes:
            if outcome.ok:
                got[outcome.candid] = outcome.scores[MODEL]
    assert got.keys() == expected.keys()
    candids = sorted(expected)
    np.testing.assert_allclose(
        [got[c] for c in candids], [expected[c] for c in candids], rtol=0, atol=1e-6
    )
    assert len({round(s, 3) for s in expected.values()}) > 5  # scores that tell alerts apart


def test_non_finite_scores_are_rejected_alone(demo_alerts: Path, scorer: Scorer):
    decoder = AlertDecoder()
    packets = sorted((demo_alerts / "20231012").glob("*.avro"))[:3]
    messages = [prepare_message(decoder, p.read_bytes()) for p in packets]
    alone = [o[0].scores[MODEL] for o in scorer.score(messages)]
    alert, good = messages[1].records[0]
    assert isinstance(good, Prepared)
    for poison in ("metadata", "triplet"):  # inputs prepare would refuse, as a bug might pass
        bad = Prepared(good.triplet.copy(), good.metadata.copy())
        getattr(bad, poison).flat[3] = np.nan
        batch = [messages[0], PreparedMessage([(alert, bad)]), messages[2]]
        outcomes = [o[0] for o in scorer.score(batch)]
        assert outcomes[1].reject is not None, poison
        assert outcomes[1].reject.reason == "inference_failed"
        assert "non-finite" in outcomes[1].reject.detail and outcomes[1].scores == {}
        assert [o.scores[MODEL] for o in (outcomes[0], outcomes[2])] == pytest.approx(
            [alone[0], alone[2]], abs=1e-6
        )
