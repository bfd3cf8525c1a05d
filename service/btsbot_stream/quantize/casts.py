"""fp16 / bf16 variants: the selected nodes compute in 16 bits, with casts around them.

Each selected node's data input is cast to the 16-bit type, its weight and bias
initializers are stored converted, and its output is cast back to float32, so the graph's
inputs, outputs and every other node stay float32. No calibration is needed.

bf16 Conv exists in ONNX from opset 22, so a bf16 graph is converted to opset 22 first
(ONNX's version converter). ONNX Runtime's CPU provider has almost no bf16 kernels
(1.32: none for Conv, MatMul, Gemm): such a variant fails the gate there, which opens
the variant on the provider it will run on.
"""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, version_converter

from btsbot_stream.quantize.exceptions import QuantizeError
from btsbot_stream.quantize.recipe import Precision

_TYPES = {
    "fp16": (TensorProto.FLOAT16, np.float16),
    "bf16": (TensorProto.BFLOAT16, ml_dtypes.bfloat16),
}
_BF16_MIN_OPSET = 22


def _default_opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def convert(parent: Path, out: Path, precision: Precision, nodes: list[str]) -> None:
    """Write ``parent`` with ``nodes`` in ``precision`` ("fp16" or "bf16") to ``out``."""
    if precision not in _TYPES:
        raise QuantizeError(f"casts make fp16 or bf16 variants, not {precision}")
    model = onnx.load(str(parent))
    if precision == "bf16" and _default_opset(model) < _BF16_MIN_OPSET:
        model = version_converter.convert_version(model, _BF16_MIN_OPSET)
    selected = set(nodes)
    missing = selected - {node.name for node in model.graph.node}
    if missing:
        raise QuantizeError(f"nodes not in the graph: {sorted(missing)}")
    onnx_type, np_type = _TYPES[precision]
    weights = {tensor.name: tensor for tensor in model.graph.initializer}
    converted: dict[str, str] = {}  # float32 initializer -> its 16-bit copy
    rebuilt: list[onnx.NodeProto] = []
    for node in model.graph.node:
        if node.name not in selected:
            rebuilt.append(node)
            continue
        inputs = []
        for name in node.input:
            if name in weights:
                if name not in converted:
                    array = numpy_helper.to_array(weights[name]).astype(np_type)
                    converted[name] = f"{name}.{precision}"
                    model.graph.initializer.append(numpy_helper.from_array(array, converted[name]))
                inputs.append(converted[name])
            elif name:
                cast = f"{name}.{precision}.{node.name}"
                rebuilt.append(helper.make_node("Cast", [name], [cast], name=cast, to=onnx_type))
                inputs.append(cast)
            else:
                inputs.append(name)  # an omitted optional input
        outputs = list(node.output)
        del node.input[:], node.output[:]
        node.input.extend(inputs)
        node.output.extend(f"{name}.{precision}" for name in outputs)
        rebuilt.append(node)
        for name in outputs:
            low = f"{name}.{precision}"
            rebuilt.append(
                helper.make_node("Cast", [low], [name], name=f"{low}.back", to=TensorProto.FLOAT)
            )
    del model.graph.node[:]
    model.graph.node.extend(rebuilt)
    _drop_unused_initializers(model)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise QuantizeError(f"the {precision} graph is not valid ONNX: {exc}") from exc
    onnx.save(model, str(out))


def _drop_unused_initializers(model: onnx.ModelProto) -> None:
    used = {name for node in model.graph.node for name in node.input}
    kept = [tensor for tensor in model.graph.initializer if tensor.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
