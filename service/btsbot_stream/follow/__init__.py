"""Follow-up tools' Kafka side: read the scored topic and candidate events, filter them
on headers before decoding, de-duplicate by candid, save what passes (``watch``)."""
