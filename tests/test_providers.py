"""Provider choice for ``device=auto``: a GPU provider is taken only when its library
loads, so an onnxruntime-gpu build without TensorRT libraries (the CUDA image) runs on
CUDA quietly instead of asking for TensorRT and reporting a degraded start."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort
import pytest

from btsbot_stream.engine import providers

GPU_BUILD = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.fixture
def gpu_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """What onnxruntime-gpu reports: every provider compiled in, loadable or not."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(GPU_BUILD))


def _loadable(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    monkeypatch.setattr(
        providers, "provider_loads", lambda p: p in {*names, "CPUExecutionProvider"}
    )


def test_auto_skips_tensorrt_when_its_libraries_are_missing(
    gpu_build: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _loadable(monkeypatch, "CUDAExecutionProvider")
    with caplog.at_level(logging.INFO):
        assert providers.resolve("auto") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert "DEGRADED" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "TensorrtExecutionProvider is in this build" in caplog.text


def test_auto_takes_tensorrt_when_it_loads(gpu_build: None, monkeypatch: pytest.MonkeyPatch):
    _loadable(monkeypatch, "TensorrtExecutionProvider", "CUDAExecutionProvider")
    assert providers.resolve("auto") == GPU_BUILD


def test_auto_runs_on_the_cpu_when_no_gpu_library_loads(
    gpu_build: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _loadable(monkeypatch)
    assert providers.resolve("auto") == ["CPUExecutionProvider"]


def test_an_explicit_device_is_not_probed(gpu_build: None, monkeypatch: pytest.MonkeyPatch):
    """device=tensorrt keeps its meaning: ask for TensorRT, and the session check refuses
    to start when ONNX Runtime falls back (the image must carry TensorRT)."""
    _loadable(monkeypatch)
    assert providers.resolve("tensorrt") == GPU_BUILD
    assert providers.resolve("cuda") == GPU_BUILD[1:]


def test_library_loads_tells_a_library_from_a_broken_one(tmp_path: Path) -> None:
    onnxruntime_library = next((Path(ort.__file__).parent / "capi").glob("libonnxruntime.so*"))
    assert providers.library_loads(onnxruntime_library)
    fake = tmp_path / "libonnxruntime_providers_tensorrt.so"
    fake.write_bytes(b"not an ELF file")
    assert not providers.library_loads(fake)
    assert not providers.library_loads(tmp_path / "absent.so")


def test_this_build_answers_for_its_own_providers() -> None:
    """On the CPU build every test machine runs, no GPU provider library is there."""
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a GPU build: the check is for the CPU build")
    assert not providers.provider_loads("CUDAExecutionProvider")
    assert not providers.provider_loads("TensorrtExecutionProvider")
    assert providers.provider_loads("CPUExecutionProvider")
    assert providers.resolve("auto") == ["CPUExecutionProvider"]
