"""btsbot-stream: real-time bright-transient scoring of ZTF alert streams."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("btsbot-stream")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
