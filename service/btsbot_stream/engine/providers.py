"""Execution-provider choice: a preference list, checked against what the session uses.

Asking for a GPU that is not there is an error, never a silent CPU run: ONNX Runtime
falls back to the CPU quietly when a CUDA library is missing, so after creating a
session we compare the providers it actually uses with what was asked for.

``auto`` takes a GPU provider only when its library loads: onnxruntime-gpu lists the
TensorRT provider whether or not the TensorRT libraries are installed (the CUDA image
ships none), so the list alone would pick TensorRT, fall back and report a degraded
start every time.
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path
from typing import Any, Literal

import onnxruntime as ort

from btsbot_stream.engine.exceptions import ProviderError

log = logging.getLogger(__name__)
Device = Literal["auto", "cpu", "cuda", "tensorrt"]

# What each device setting asks ONNX Runtime for, best first.
_PREFERENCES: dict[str, tuple[str, ...]] = {
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "cpu": ("CPUExecutionProvider",),
}
_SHORT = {
    "TensorrtExecutionProvider": "tensorrt",
    "CUDAExecutionProvider": "cuda",
    "CPUExecutionProvider": "cpu",
}


# The shared library ONNX Runtime loads for each GPU provider, beside its own library;
# loading it pulls in that provider's dependencies (CUDA, cuDNN, TensorRT).
_PROVIDER_LIBRARIES = {
    "TensorrtExecutionProvider": "libonnxruntime_providers_tensorrt.so",
    "CUDAExecutionProvider": "libonnxruntime_providers_cuda.so",
}


def short_name(provider: str) -> str:
    return _SHORT.get(provider, provider)


def library_loads(path: Path) -> bool:
    """Whether the dynamic loader can load ``path`` and everything it links to."""
    try:
        ctypes.CDLL(str(path), mode=os.RTLD_LAZY | os.RTLD_LOCAL)
    except OSError as exc:
        log.debug("%s does not load: %s", path.name, exc)
        return False
    return True


def provider_loads(provider: str) -> bool:
    """Whether a GPU provider of this onnxruntime build can actually be loaded (its
    libraries are installed); the CPU provider always can."""
    library = _PROVIDER_LIBRARIES.get(provider)
    if library is None:
        return True
    return library_loads(Path(ort.__file__).parent / "capi" / library)


def resolve(device: Device, degrade: bool = False) -> list[str]:
    """The provider list to give ONNX Runtime for a device setting.

    ``auto`` takes the best provider this onnxruntime build offers and can load (TensorRT,
    CUDA, then CPU). An explicit ``cuda`` or ``tensorrt`` the build lacks is an error, or with
    ``degrade`` a loud fall-back to the CPU (the metrics then show a GPU requested and
    the CPU in use, and the GpuRequestedButCpu alert fires).
    """
    available = set(ort.get_available_providers())
    if device == "auto":
        candidate: Device
        for candidate in ("tensorrt", "cuda", "cpu"):
            provider = _PREFERENCES[candidate][0]
            if provider in available and provider_loads(provider):
                device = candidate
                break
            if provider in available:
                log.info("device auto: %s is in this build, its libraries are not", provider)
    wanted = _PREFERENCES[device]
    if wanted[0] not in available:
        problem = (
            f"device {device!r} needs {wanted[0]}, but this onnxruntime offers only "
            f"{sorted(available)}; install the 'gpu' extra (onnxruntime-gpu) with matching "
            "CUDA/cuDNN libraries, or set device=cpu"
        )
        if not degrade:
            raise ProviderError(problem)
        log.error("%s. DEGRADED: running on the CPU (engine.on_missing_gpu=degrade)", problem)
        return ["CPUExecutionProvider"]
    return [p for p in wanted if p in available]


def check_active(
    session: ort.InferenceSession, requested: list[str], model: str, degrade: bool = False
) -> str:
    """Return the provider that runs the model; raise if the first choice was dropped."""
    active = session.get_providers()
    if not active or active[0] != requested[0]:
        problem = (
            f"model {model!r}: asked for {requested[0]} but ONNX Runtime runs it on "
            f"{active[0] if active else 'nothing'}; check the CUDA/cuDNN/TensorRT libraries "
            "(ONNX Runtime logs why it fell back) or set device=cpu"
        )
        if not degrade or not active:
            raise ProviderError(problem)
        log.error("%s. DEGRADED (engine.on_missing_gpu=degrade)", problem)
    return short_name(active[0])


def provider_options(providers: list[str], options: dict[str, dict[str, Any]]) -> list[Any]:
    """Attach per-provider options (device id, cuDNN search...) to the provider list."""
    return [(p, options.get(p, {})) for p in providers]


def gpu_options(
    device_id: int = 0,
    cudnn_conv_algo_search: str = "EXHAUSTIVE",
    tensorrt_fp16: bool = False,
    tensorrt_cache: str | None = None,
) -> dict[str, dict[str, Any]]:
    """CUDA and TensorRT provider options (ignored by the CPU provider).

    EXHAUSTIVE cuDNN search costs time once per input shape, which is why batches are
    padded to fixed buckets and every bucket is run once at start (warm-up).
    """
    trt: dict[str, Any] = {"device_id": device_id, "trt_fp16_enable": tensorrt_fp16}
    if tensorrt_cache:
        trt |= {"trt_engine_cache_enable": True, "trt_engine_cache_path": tensorrt_cache}
    return {
        "CUDAExecutionProvider": {
            "device_id": device_id,
            "cudnn_conv_algo_search": cudnn_conv_algo_search,
        },
        "TensorrtExecutionProvider": trt,
    }
