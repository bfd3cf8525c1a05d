"""Process-level failures of the follow-up tools, each saying what to fix."""

from btsbot_stream.errors import BtsbotError


class FollowError(BtsbotError):
    """Base class of the follow-up tools' errors."""


class BrokerUnreachable(FollowError):
    """No broker answered at the bootstrap servers within the timeout."""


class UnknownTopic(FollowError):
    """A topic to read does not exist on the broker."""


class NotAuthorized(FollowError):
    """The broker refused the credentials, the topic or the consumer group."""
