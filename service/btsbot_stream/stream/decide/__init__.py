"""The decision stage on Kafka: the scored topic in, per-object state in Quix Streams'
RocksDB stores (changelog topics behind them), candidate events out."""
