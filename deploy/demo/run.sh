#!/usr/bin/env bash
# The README's main command: a local Apache Kafka, the sample alerts replayed into a
# ZTF-style nightly topic, the service scoring them until idle, and a summary.
# Usage: deploy/demo/run.sh VENV_BIN SHARED_DIR
set -euo pipefail
bin=$1
shared=$2
here=$(cd "$(dirname "$0")" && pwd)
data=$(mktemp -d -t btsbot-demo-XXXX)
port=${BTSBOT_DEMO_PORT:-19092}
bootstrap=127.0.0.1:$port

"$bin/python" "$here/../kafka/local_kafka.py" start --port "$port" --data-dir "$data/kafka" >/dev/null
trap '"$bin/python" "$here/../kafka/local_kafka.py" stop --data-dir "$data/kafka"; rm -rf "$data"' EXIT

topic=ztf_20181129_programid1
"$bin/btsbot-stream" replay "$shared/data/ztf/alerts" "$shared/data/ztf/odd" \
    --topic "$topic" --bootstrap-servers "$bootstrap" --partitions 2
BTSBOT_KAFKA__BOOTSTRAP_SERVERS=$bootstrap \
BTSBOT_ENGINE__MODELS_DIR=$shared/models \
    "$bin/btsbot-stream" run --config "$here/config.toml" --exit-when-idle 5
"$bin/btsbot-stream" top --bootstrap-servers "$bootstrap" --topic ztf_btsbot_scored \
    --dead-letter-topic ztf_btsbot_dead_letters -n 10
