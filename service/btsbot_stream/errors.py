"""The root of every exception the service raises.

Process-level failures (bad configuration, a missing or corrupt model, an unreachable
broker at start) are exceptions derived from :class:`BtsbotError`; they stop the process
with a message that says what to fix. Alert-level failures are values (see
:class:`btsbot_stream.alerts.rejects.Reject`), never exceptions that escape a batch.
"""


class BtsbotError(Exception):
    """Base class of all btsbot-stream exceptions."""


class ConfigError(BtsbotError):
    """A setting is missing or invalid; the message names the setting and the fix."""
