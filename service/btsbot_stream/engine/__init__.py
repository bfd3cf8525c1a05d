"""Model cards, ONNX Runtime sessions and batched scoring. Knows nothing of Kafka."""
