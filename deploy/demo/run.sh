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
# The scanning page over what was scored and decided: cutouts, light curves, the JSON API.
# At a terminal it serves until Ctrl-C; otherwise (CI, scripts) it serves until it has
# read the demo's topics, prints what it lists, and the demo ends. BTSBOT_DEMO_WEB=0 skips.
if [ "${BTSBOT_DEMO_WEB:-1}" != 0 ]; then
    web_port=${BTSBOT_DEMO_WEB_PORT:-8080}
    web=("$bin/btsbot-stream" web --bootstrap-servers "$bootstrap" --port "$web_port"
         --topic ztf_btsbot_scored)
    if [ -t 0 ] && [ -t 1 ]; then
        echo "the scanning page: http://127.0.0.1:$web_port/  (Ctrl-C stops the demo)"
        "${web[@]}"
    else
        "${web[@]}" 2>"$data/web.log" &
        web_pid=$!
        "$bin/python" "$here/page_check.py" "http://127.0.0.1:$web_port" 29 16 \
            || { tail -20 "$data/web.log"; kill "$web_pid"; exit 1; }
        kill "$web_pid"
        wait "$web_pid" 2>/dev/null || true
    fi
fi
