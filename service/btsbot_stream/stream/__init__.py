"""The Kafka service: consume alerts, score them in batches, republish, commit."""
