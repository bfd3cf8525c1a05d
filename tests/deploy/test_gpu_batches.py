"""The GPU configurations (the gpu overlay, docker/compose.gpu.yaml) pad every batch the
service can form to a shape that warm-up has already run, so cuDNN's algorithm search
and any other first-shape cost never land on a live batch; and they stay within the
card's recommended_max_batch. Run with the real model on the CPU (the shapes, not the
device, are what is checked)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from tests.deploy.conftest import K8S, REPO, pod_settings, render
from tests.deploy.test_compose import COMPOSE_FILES, load

from btsbot_stream import config as service_config
from btsbot_stream.config import EngineSettings
from btsbot_stream.engine.model import OnnxModel, load_model


def _overlay_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> EngineSettings:
    return pod_settings(render(K8S / "overlays" / "gpu"), monkeypatch, tmp_path).engine


def _compose_engine(monkeypatch: pytest.MonkeyPatch, _tmp: Path) -> EngineSettings:
    gpu = load(COMPOSE_FILES[1])
    for variable in list(os.environ):
        if variable.startswith("BTSBOT_"):
            monkeypatch.delenv(variable)
    for name, value in gpu["services"]["btsbot"]["environment"].items():
        monkeypatch.setenv(name, value)
    return service_config.load(REPO / "docker" / "config.toml").engine


def _shapes_run(model: OnnxModel) -> list[int]:
    """Record the batch size of every session run of ``model``."""
    seen: list[int] = []
    run = model.session.run

    def recording(outputs, feeds, *args):  # type: ignore[no-untyped-def]
        seen.append(len(next(iter(feeds.values()))))
        return run(outputs, feeds, *args)

    model.session.run = recording  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize(
    "where", [_overlay_engine, _compose_engine], ids=["k8s-gpu", "compose-gpu"]
)
def test_warm_up_covers_every_live_batch_shape(
    where, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    engine = where(monkeypatch, tmp_path)
    assert engine.device == "cuda" and engine.warmup
    assert engine.batch_buckets, "batch_size without batch_buckets: every size is a new shape"
    model = load_model(
        engine.models[0], REPO / "models", "cpu", 2, engine.batch_size, buckets=engine.batch_buckets
    )
    assert engine.batch_size <= model.card.recommended_max_batch
    assert model.max_batch <= model.card.recommended_max_batch
    seen = _shapes_run(model)
    model.warm_up()
    warmed = set(seen)
    seen.clear()
    # the service forms batches of 1..batch_size alerts: each edge of each bucket
    sizes = sorted(
        {1, engine.batch_size}
        | {b for b in engine.batch_buckets}
        | {b + 1 for b in engine.batch_buckets if b < engine.batch_size}
    )
    for n in sizes:
        scores = model.predict(np.zeros((n, 63, 63, 3), np.float32), np.zeros((n, 25), np.float32))
        assert scores.shape == (n,)
    assert set(seen) <= warmed, f"live shapes {sorted(set(seen) - warmed)} were never warmed up"
