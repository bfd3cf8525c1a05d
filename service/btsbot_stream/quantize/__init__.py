"""Reduced-precision variants of a model (int8, fp16, bf16), installed only after a
fidelity gate on real alerts the calibration never saw.

Like :mod:`btsbot_stream.export`, this package is outside the service's import path: it
needs ``onnx`` (the ``quantize`` extra) besides ONNX Runtime's quantization tools, and
the CLI imports :mod:`~btsbot_stream.quantize.build` only when ``models quantize`` runs.
The modules the CLI reads defaults from (:mod:`~btsbot_stream.quantize.recipe`,
:mod:`~btsbot_stream.quantize.gate`) import neither.

- :mod:`~btsbot_stream.quantize.recipe`: what to make (precision, which nodes, calibration);
- :mod:`~btsbot_stream.quantize.dataset`: real alerts prepared, split by object, labels;
- :mod:`~btsbot_stream.quantize.graph`: which nodes a scope selects, which ended reduced;
- :mod:`~btsbot_stream.quantize.int8`: static int8 (QDQ) with ONNX Runtime's tools;
- :mod:`~btsbot_stream.quantize.casts`: fp16 / bf16 by casts around the selected nodes;
- :mod:`~btsbot_stream.quantize.gate`: the fidelity gate and its report;
- :mod:`~btsbot_stream.quantize.build`: one variant end to end, installed atomically.
"""
