"""What a variant is made of: precision, the nodes it reduces, the calibration.

Scopes (which nodes compute in reduced precision; every other node stays float32):

- ``inner-conv``: every Conv but the first (the one reading the stamps). For
  btsbot-v1.0.1 that is conv2-conv4: 2.0x on a CPU with VNNI, no decision flip on real
  alerts, while quantizing conv1 and the dense layers too flipped 35 of 285.
- ``pointwise-conv``: the 1x1 Convs (ConvNeXt's block MLPs, most of its arithmetic); the
  stem, the depthwise 7x7 and downsampling Convs and the head stay float32.
- ``all``: whatever ONNX Runtime's quantizer supports, head and stem included (the
  whole-graph recipe; kept to show the gate refusing it).

``auto`` picks ``inner-conv`` for the custom CNN and ``pointwise-conv`` for the timm models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Precision = Literal["int8", "fp16", "bf16"]
Scope = Literal["auto", "inner-conv", "pointwise-conv", "all"]
CalibrationMethod = Literal["percentile", "minmax", "entropy"]

_SCOPE_BY_ARCHITECTURE: dict[str, Scope] = {"btsbot-cnn+mlp": "inner-conv"}


class Recipe(BaseModel):
    """How to make one variant (defaults: the recipe measured on btsbot-v1.0.1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    precision: Precision = "int8"
    scope: Scope = "auto"
    calibration_method: CalibrationMethod = "percentile"
    percentile: float = Field(default=99.999, gt=90.0, le=100.0)
    per_channel: bool = Field(default=True, description="int8 weights: a scale per channel")
    # uint8 with a zero point suits CPUs (VNNI's u8 x s8 products); TensorRT takes
    # symmetric int8 activations only.
    activations: Literal["uint8", "int8"] = "uint8"

    def resolved_scope(self, architecture: str) -> Scope:
        if self.scope != "auto":
            return self.scope
        return _SCOPE_BY_ARCHITECTURE.get(architecture, "pointwise-conv")

    def settings(self, architecture: str) -> dict[str, str | float | bool]:
        """What a card records about the recipe (only what applies to the precision)."""
        settings: dict[str, str | float | bool] = {"scope": self.resolved_scope(architecture)}
        if self.precision == "int8":
            settings |= {
                "format": "QDQ",
                "weights": "int8 symmetric, "
                + ("per channel" if self.per_channel else "per tensor"),
                "activations": (
                    "uint8 asymmetric" if self.activations == "uint8" else "int8 symmetric"
                )
                + ", per tensor",
                "calibration_method": self.calibration_method,
            }
            if self.calibration_method == "percentile":
                settings["percentile"] = self.percentile
        return settings
