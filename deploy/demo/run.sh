#!/usr/bin/env bash
# The README's main command: a local Apache Kafka, the demo sample (deploy/demo/alerts)
# replayed into a ZTF-style nightly topic, the service scoring it with the production
# model shipped in models/ until idle, a summary, then the decision stage and the
# candidate events the sample produces. Needs nothing beside the clone.
# Usage: deploy/demo/run.sh VENV_BIN
set -euo pipefail
bin=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
data=$(mktemp -d -t btsbot-demo-XXXX)
port=${BTSBOT_DEMO_PORT:-19092}
bootstrap=127.0.0.1:$port

"$bin/python" "$repo/deploy/kafka/local_kafka.py" start --port "$port" --data-dir "$data/kafka" >/dev/null
trap '"$bin/python" "$repo/deploy/kafka/local_kafka.py" stop --data-dir "$data/kafka"; rm -rf "$data"' EXIT

topic=ztf_20181129_programid1
"$bin/btsbot-stream" replay "$here/alerts" \
    --topic "$topic" --bootstrap-servers "$bootstrap" --partitions 2
BTSBOT_KAFKA__BOOTSTRAP_SERVERS=$bootstrap \
BTSBOT_ENGINE__MODELS_DIR=$repo/models \
    "$bin/btsbot-stream" run --config "$here/config.toml" --exit-when-idle 5
"$bin/btsbot-stream" top --bootstrap-servers "$bootstrap" --topic ztf_btsbot_scored \
    --dead-letter-topic ztf_btsbot_dead_letters -n 10
# The decision stage over what was scored: one candidate event per (object, policy),
# logged as it is published to ztf_btsbot_candidates.
BTSBOT_KAFKA__BOOTSTRAP_SERVERS=$bootstrap \
BTSBOT_DECIDE__STATE_DIR=$data/decide-state \
    "$bin/btsbot-stream" decide --config "$here/config.toml" --exit-when-idle 5 2>&1 \
    | grep -E "processor: candidate |decide.app: stopped cleanly"
# The scanning page over what was scored (and the candidate events, once decided):
# cutouts, light curves, the JSON API. Ctrl-C ends the demo. BTSBOT_DEMO_WEB=0 skips it.
if [ "${BTSBOT_DEMO_WEB:-1}" != 0 ]; then
    web_port=${BTSBOT_DEMO_WEB_PORT:-8080}
    echo "the scanning page (Ctrl-C stops the demo):"
    "$bin/btsbot-stream" web --bootstrap-servers "$bootstrap" --port "$web_port" \
        --topic ztf_btsbot_scored
fi
