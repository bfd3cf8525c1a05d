"""``score --processes`` and ``bench --stage features --processes``: the pool from the
command line gives the lines the in-process path gives, and the bench says how it ran."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "btsbot_stream", *args], capture_output=True, text=True, timeout=600
    )


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_score_with_workers_writes_what_score_in_process_writes(
    demo_alerts: Path, models_dir: Path, tmp_path: Path
):
    outs = {}
    for processes in ("0", "2"):
        out = outs[processes] = tmp_path / f"{processes}.jsonl"
        common = ["--models-dir", str(models_dir), "--device", "cpu", "--batch-size", "8"]
        done = _run("score", str(demo_alerts), *common, "--processes", processes, "--out", str(out))
        assert done.returncode == 0, done.stderr
    inline, pooled = _lines(outs["0"]), _lines(outs["2"])
    assert len(inline) == 32 and len(pooled) == len(inline)
    for mine, theirs in zip(inline, pooled, strict=True):
        mine_scores, their_scores = mine.pop("scores", {}), theirs.pop("scores", {})
        assert mine == theirs  # file, identity, reason and detail
        assert mine_scores.keys() == their_scores.keys()
        for model, score in mine_scores.items():
            assert abs(score - their_scores[model]) <= 1e-6


def test_bench_features_reports_the_processes(demo_alerts: Path, tmp_path: Path):
    done = _run(
        "bench",
        str(demo_alerts),
        "--stage",
        "features",
        "--processes",
        "2",
        "--repeat",
        "1",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["processes"] == 2 and result["alerts"] == 32
    assert result["alerts_per_s"] > 0 and result["alerts_per_s_per_process"] > 0
    done = _run("bench", str(demo_alerts), "--processes", "auto-ish", "--json")
    assert done.returncode == 2 and "neither 'auto' nor a number" in done.stderr
