"""``decide --replay`` on real alerts (the demo sample; the shared corpus when present):
its fires equal those of a plain implementation of the four published rules, written
here from BTSbot's bts_val.py, on the scores ``score`` gives the same files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import fastavro
from tests.decisions.reference import reference_fires

from corpus import AlertSet


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "btsbot_stream", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done


def _candidates(files: list[Path]) -> dict[int, tuple[str, float, float]]:
    """candid -> (objectId, jd, magpsf), read with fastavro alone."""
    out = {}
    for path in files:
        with path.open("rb") as fh:
            for record in fastavro.reader(fh):
                cand = record["candidate"]
                out[cand["candid"]] = (record.get("objectId"), cand["jd"], cand["magpsf"])
    return out


def test_replay_matches_the_published_rules(
    real_alerts: AlertSet, models_dir: Path, tmp_path: Path
) -> None:
    files = [str(p) for p in real_alerts.files]
    common = ["--models-dir", str(models_dir), "--device", "cpu"]
    _cli("score", *files, *common, "--out", str(tmp_path / "scores.jsonl"))
    done = _cli("decide", "--replay", *files, *common, "--out", str(tmp_path / "fires.jsonl"))

    candidates = _candidates(real_alerts.files)
    rows = []
    for line in (tmp_path / "scores.jsonl").read_text().splitlines():
        scored = json.loads(line)
        if "scores" in scored:
            obj, jd, mag = candidates[scored["candid"]]
            rows.append((obj, scored["candid"], jd, mag, scored["scores"]["btsbot-v1.0.1"]))
    assert len(rows) == real_alerts.fits_alerts
    expected = reference_fires(rows)

    events = [json.loads(line) for line in (tmp_path / "fires.jsonl").read_text().splitlines()]
    got = {(e["objectId"], e["policy"], e["candid"], e["jd"], e["magpsf"]) for e in events}
    assert len(got) == len(events)  # one event per (object, policy)
    assert got == expected
    assert expected, "the sample must make some policy fire, or this proves nothing"
    objects = len({r[0] for r in rows})
    assert f"{len(rows)} scored alerts of {objects} objects" in done.stderr
    for name in ("bts_p1", "bts_p2", "prod_p1", "prod_p2"):
        saved = sum(1 for e in expected if e[1] == name)
        assert f"{name}={saved}" in done.stderr
