"""Object-level decisions: BTSbot's save and trigger policies over each object's scored
alerts. Pure code (no Kafka, no files): the stream stage (``stream.decide``) and the
file replay (``cli.decide --replay``) both call :func:`decide.observe`."""
