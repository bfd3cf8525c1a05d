"""Which nodes of a graph a scope selects, and which ended up in reduced precision."""

from __future__ import annotations

import onnx

from btsbot_stream.quantize.exceptions import QuantizeError
from btsbot_stream.quantize.recipe import Scope

# The arithmetic that reduced precision pays for; everything else is cheap or memory bound.
COMPUTE_OPS = ("Conv", "MatMul", "Gemm")


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {tensor.name: tensor for tensor in model.graph.initializer}


def _is_pointwise(node: onnx.NodeProto, weights: dict[str, onnx.TensorProto]) -> bool:
    weight = weights.get(node.input[1]) if len(node.input) > 1 else None
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    return weight is not None and list(weight.dims[2:]) == [1, 1] and group == 1


def select_nodes(model: onnx.ModelProto, scope: Scope) -> list[str] | None:
    """Names of the nodes ``scope`` puts in reduced precision; None for ``all`` (the
    quantizer's own choice: every node it supports).

    Raises
    ------
    QuantizeError
        When the scope selects nothing in this graph, or a selected node has no name.
    """
    if scope == "all":
        return None
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    if scope == "inner-conv":
        chosen = convs[1:]  # nodes are topologically sorted: the first reads the stamps
    elif scope == "pointwise-conv":
        weights = _initializers(model)
        chosen = [node for node in convs if _is_pointwise(node, weights)]
    else:  # pragma: no cover - "auto" is resolved by the recipe
        raise QuantizeError(f"unresolved scope {scope!r}")
    if not chosen:
        raise QuantizeError(f"scope {scope!r} selects no node of this graph; choose another")
    if any(not node.name for node in chosen):
        raise QuantizeError(f"scope {scope!r} selects unnamed nodes; re-export the model")
    return [node.name for node in chosen]


def compute_nodes(model: onnx.ModelProto) -> list[str]:
    return [node.name for node in model.graph.node if node.op_type in COMPUTE_OPS]


def dequantized_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes of a QDQ graph fed by a DequantizeLinear: those ONNX Runtime runs in int8."""
    produced_by_dq = {
        out
        for node in model.graph.node
        if node.op_type == "DequantizeLinear"
        for out in node.output
    }
    return [
        node.name
        for node in model.graph.node
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear")
        and any(name in produced_by_dq for name in node.input)
    ]
