"""ZTF alert packets: decoding, stamps, features. Knows nothing of Kafka or models."""
