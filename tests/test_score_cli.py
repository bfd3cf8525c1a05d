"""``btsbot-stream score`` over the demo sample and the whole shared corpus: nothing
crashes, every packet is accounted for, and odd inputs get their specific reasons."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from corpus import packets_in


def _score(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "btsbot_stream", "score", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def corpus_lines(ztf: Path, models_dir: Path, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("score") / "scores.jsonl"
    done = _score([str(ztf), "--models-dir", str(models_dir), "--device", "cpu", "--out", str(out)])
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_every_packet_has_exactly_one_line(corpus_lines, ztf: Path):
    files = sorted(p for p in ztf.rglob("*") if p.name.endswith((".avro", ".tar.gz")))
    expected = Counter()
    for path in files:
        if path.name.endswith(".tar.gz"):
            expected.update({f"{path}:{m}": 1 for m in range(packets_in(path))})
        else:
            expected[str(path)] += 1
    got_files = Counter(line["file"].split(".tar.gz:")[0] for line in corpus_lines)
    want_files = Counter(k.split(".tar.gz:")[0] for k in expected.elements())
    assert got_files == want_files
    for line in corpus_lines:
        assert ("scores" in line) != ("error" in line), line
        if "error" in line:
            assert line["detail"], line


def test_good_alerts_are_scored_with_probabilities(corpus_lines):
    scored = [line for line in corpus_lines if "scores" in line]
    regular = [line for line in scored if "/ztf/alerts/" in line["file"]]
    assert len(regular) == 550  # 556 real alerts less the 6 JPEG prototypes
    for line in scored:
        p = line["scores"]["btsbot-v1.0.1"]
        assert 0.0 <= p <= 1.0
        assert isinstance(line["candid"], int) and line["objectId"].startswith("ZTF")
    assert len({line["candid"] for line in regular}) == 550


def _reasons(lines: list[dict], folder: str) -> Counter:
    return Counter(line.get("error", "scored") for line in lines if f"/{folder}/" in line["file"])


def test_odd_inputs_get_specific_reasons(corpus_lines):
    assert _reasons(corpus_lines, "jpeg-prototypes") == {"cutout_jpeg": 10, "avro_truncated": 2}
    # 5 files of that folder are cut short; the other 10 are intact (block sizes, sync
    # markers and the stamps' gzip CRCs all check out) and are scored.
    assert _reasons(corpus_lines, "truncated") == {"avro_truncated": 5, "scored": 10}
    no_cutouts = _reasons(corpus_lines, "no-cutouts")
    assert set(no_cutouts) == {"cutout_missing"} and no_cutouts["cutout_missing"] == 108
    mixed = _reasons(corpus_lines, "mixed-versions")
    assert mixed == {"scored": 16, "cutout_jpeg": 6}


def test_demo_sample_every_packet_one_line(demo_alerts: Path, models_dir: Path, tmp_path: Path):
    out = tmp_path / "scores.jsonl"
    done = _score([str(demo_alerts), "--models-dir", str(models_dir), "--out", str(out)])
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["file"] for line in lines) == sorted(
        str(p) for p in demo_alerts.rglob("*.avro")
    )
    reasons = Counter(line.get("error", "scored") for line in lines)
    assert reasons == {"scored": 29, "cutout_jpeg": 1, "avro_truncated": 1, "cutout_missing": 1}
    assert "32 alerts from 32 files" in done.stderr


def test_missing_model_is_a_clear_startup_error(demo_alerts: Path, tmp_path: Path):
    done = _score(
        [
            str(demo_alerts / "20200202"),
            "--models-dir",
            str(tmp_path),
            "--out",
            str(tmp_path / "x.jsonl"),
        ]
    )
    assert done.returncode == 1
    assert "btsbot-v1.0.1.onnx not found" in done.stderr
    assert "Traceback" not in done.stderr


def test_usage_error_exits_2(tmp_path: Path):
    done = _score([str(tmp_path)])  # no --out
    assert done.returncode == 2 and "--out" in done.stderr


def test_json_logs_are_one_object_per_line(demo_alerts: Path, models_dir: Path, tmp_path: Path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "btsbot_stream",
            "--log-format",
            "json",
            "score",
            str(demo_alerts / "20200202"),
            "--models-dir",
            str(models_dir),
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "s.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    logs = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    loaded = [e for e in logs if "btsbot-v1.0.1 loaded" in e["message"]]
    assert loaded and loaded[0]["level"] == "info" and loaded[0]["time"].endswith("Z")
