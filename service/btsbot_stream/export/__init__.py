"""Published BTSbot PyTorch checkpoints -> verified ONNX models with cards.

The only package that imports torch and timm (the ``export`` extra). Importing this
package itself imports neither, so callers can catch a missing extra where they import
the modules that need it (``btsbot_stream.export.build``):

- :mod:`~btsbot_stream.export.hub`: checkpoint files from the hub cache or a folder;
- :mod:`~btsbot_stream.export.checkpoints`: train_config parsing, safe state_dict loading;
- :mod:`~btsbot_stream.export.architectures`: the modules the state_dicts load into;
- :mod:`~btsbot_stream.export.onnx_export`: torch -> ONNX, and parity;
- :mod:`~btsbot_stream.export.examples`: inputs to check on (numpy only);
- :mod:`~btsbot_stream.export.build`: one export end to end, installed atomically.
"""

# Here, not in onnx_export, so the CLI can show the default without importing torch.
DEFAULT_OPSET = 18
