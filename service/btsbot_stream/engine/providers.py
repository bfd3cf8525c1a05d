"""Execution-provider choice: a preference list, checked against what the session uses.

Asking for a GPU that is not there is an error, never a silent CPU run: ONNX Runtime
falls back to the CPU quietly when a CUDA library is missing, so after creating a
session we compare the providers it actually uses with what was asked for.
"""

from __future__ import annotations

from typing import Any, Literal

import onnxruntime as ort

from btsbot_stream.engine.exceptions import ProviderError

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


def short_name(provider: str) -> str:
    return _SHORT.get(provider, provider)


def resolve(device: Device) -> list[str]:
    """The provider list to give ONNX Runtime for a device setting.

    ``auto`` takes the best provider this onnxruntime build offers (TensorRT, CUDA, then
    CPU); an explicit ``cuda`` or ``tensorrt`` fails when the build lacks it.
    """
    available = set(ort.get_available_providers())
    if device == "auto":
        candidate: Device
        for candidate in ("tensorrt", "cuda", "cpu"):
            if _PREFERENCES[candidate][0] in available:
                device = candidate
                break
    wanted = _PREFERENCES[device]
    if wanted[0] not in available:
        raise ProviderError(
            f"device {device!r} needs {wanted[0]}, but this onnxruntime offers only "
            f"{sorted(available)}; install the 'gpu' extra (onnxruntime-gpu) with matching "
            "CUDA/cuDNN libraries, or set device=cpu"
        )
    return [p for p in wanted if p in available]


def check_active(session: ort.InferenceSession, requested: list[str], model: str) -> str:
    """Return the provider that runs the model; raise if the first choice was dropped."""
    active = session.get_providers()
    if not active or active[0] != requested[0]:
        raise ProviderError(
            f"model {model!r}: asked for {requested[0]} but ONNX Runtime runs it on "
            f"{active[0] if active else 'nothing'}; check the CUDA/cuDNN/TensorRT libraries "
            "(ONNX Runtime logs why it fell back) or set device=cpu"
        )
    return short_name(active[0])


def provider_options(providers: list[str], gpu_options: dict[str, Any]) -> list[Any]:
    """Attach per-provider options (device id, cuDNN search...) to the provider list."""
    return [(p, gpu_options.get(p, {})) for p in providers]
