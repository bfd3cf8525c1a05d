"""Exceptions of the stream package (process-level: the run stops without committing)."""

from btsbot_stream.errors import BtsbotError


class StreamError(BtsbotError):
    """Base class of stream errors."""


class DeliveryError(StreamError):
    """A message could not be delivered to the broker within the producer's timeout.

    Raised at the next flush; the offsets of the undelivered messages are never
    committed, so a restart consumes them again (at-least-once)."""


class FatalKafkaError(StreamError):
    """librdkafka reported a fatal error (e.g. a fenced transactional producer)."""


class PreflightError(StreamError):
    """A start-up check failed (brokers, credentials, certificates, topics); the message
    says what to fix."""
