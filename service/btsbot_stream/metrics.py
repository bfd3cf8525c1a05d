"""Every Prometheus metric the service exports, defined once, with fixed label sets.

The Grafana dashboard and the alert rules in ``deploy/`` use these names; a test checks
them against what a running service actually exports.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

NAMESPACE = "btsbot"

ALERTS_CONSUMED = Counter(
    "alerts_consumed", "Alert messages read from the input topics", namespace=NAMESPACE
)
ALERTS_SCORED = Counter("alerts_scored", "Alerts scored, per model", ["model"], namespace=NAMESPACE)
ALERTS_PUBLISHED = Counter(
    "alerts_published", "Scored alerts acknowledged by the output topic", namespace=NAMESPACE
)
DEAD_LETTERS = Counter(
    "dead_letters",
    "Inputs sent to the dead-letter topic, by reason",
    ["reason"],
    namespace=NAMESPACE,
)
BATCH_SIZE = Histogram(
    "batch_size",
    "Alerts per inference batch",
    namespace=NAMESPACE,
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
INFERENCE_SECONDS = Histogram(
    "inference_seconds",
    "Wall time of one batch through one model",
    ["model"],
    namespace=NAMESPACE,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ALERT_LATENCY_SECONDS = Histogram(
    "alert_latency_seconds",
    "From the input message's Kafka timestamp to the output's broker acknowledgement",
    namespace=NAMESPACE,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
CONSUMER_LAG = Gauge(
    "consumer_lag",
    "High watermark minus position, per assigned input partition",
    ["topic", "partition"],
    namespace=NAMESPACE,
)
IN_FLIGHT = Gauge("in_flight_alerts", "Alerts consumed but not yet committed", namespace=NAMESPACE)
PAUSED_PARTITIONS = Gauge(
    "paused_partitions", "Input partitions paused by backpressure", namespace=NAMESPACE
)
EXECUTION_PROVIDER = Gauge(
    "execution_provider",
    "1 for the ONNX Runtime provider each model runs on",
    ["model", "provider"],
    namespace=NAMESPACE,
)
GPU_REQUESTED = Gauge(
    "gpu_requested",
    "1 when the configured device asks for a GPU (cuda/tensorrt)",
    namespace=NAMESPACE,
)
BUILD = Info("build", "Service version and configuration summary", namespace=NAMESPACE)

# --- the decision stage (btsbot-stream decide) ---------------------------------------------
DECIDE_ALERTS = Counter(
    "decide_alerts",
    "Scored alerts taken into object state: in_order, late (older than one already seen), "
    "duplicate (candid already known: ignored)",
    ["outcome"],
    namespace=NAMESPACE,
)
DECIDE_UNREADABLE = Counter(
    "decide_unreadable",
    "Scored-topic messages the decision stage skipped, by reason",
    ["reason"],
    namespace=NAMESPACE,
)
DECIDE_EVENTS = Counter(
    "decide_events",
    "Candidate events produced (a policy firing on an object), per policy",
    ["policy"],
    namespace=NAMESPACE,
)
DECIDE_EXPIRED_ON_ARRIVAL = Counter(
    "decide_expired_on_arrival",
    "Alerts whose object's history was older than the retention: history dropped, "
    "the object starts afresh",
    namespace=NAMESPACE,
)
DECIDE_OBJECTS = Gauge(
    "decide_objects",
    "Objects in this instance's state store (RocksDB estimate), assigned partitions only",
    namespace=NAMESPACE,
)
DECIDE_STATE_BYTES = Gauge(
    "decide_state_bytes",
    "Bytes of this instance's state store: SST files plus memtables",
    namespace=NAMESPACE,
)
DECIDE_RESTORE_SECONDS = Histogram(
    "decide_restore_seconds",
    "Wall time of restoring state stores from their changelog topics",
    namespace=NAMESPACE,
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)

# -- delivery under faults (issue #8) ---------------------------------------------------
NOT_READY_CAUSES = (
    "starting",
    "not_joined",
    "brokers_unreachable",
    "registry_unavailable",
    "stopping",
)
NOT_READY = Gauge(
    "not_ready",
    "1 while /readyz answers 503 for this cause",
    ["cause"],
    namespace=NAMESPACE,
)
REGISTRY_UNAVAILABLE = Gauge(
    "schema_registry_unavailable",
    "1 while the schema registry is away and consumption is paused",
    namespace=NAMESPACE,
)
REGISTRY_RETRIES = Counter(
    "schema_registry_retries",
    "Registry requests that failed (down, 5xx, timeout) and were retried",
    namespace=NAMESPACE,
)
COMMITS = Counter(
    "offset_commits",
    "Offset commits answered by the broker, by result",
    ["result"],
    namespace=NAMESPACE,
)
REBALANCES = Counter(
    "rebalance_events",
    "Partitions assigned, revoked or lost by the consumer group",
    ["event"],
    namespace=NAMESPACE,
)
TRANSACTION_ABORTS = Counter(
    "transaction_aborts",
    "Exactly-once transactions aborted and retried",
    namespace=NAMESPACE,
)
ASSIGNED_PARTITIONS = Gauge(
    "assigned_partitions", "Input partitions this instance holds", namespace=NAMESPACE
)
for _cause in NOT_READY_CAUSES:
    NOT_READY.labels(_cause)
for _result in ("ok", "failed"):
    COMMITS.labels(_result)
for _event in ("assigned", "revoked", "lost"):
    REBALANCES.labels(_event)

# -- the scanning page (btsbot-stream web) ------------------------------------------------
# Counts about the window and its feed, never alert data: /metrics needs no token. Their
# label values are the tuples below; the web creates the children when it starts
# (web/observe.py), so the other stages export none of them.
WEB_FEEDS = ("scored", "candidates")
WEB_FEED_ERROR_KINDS = ("unreachable", "denied", "unknown_topic", "undecodable", "other")
WEB_STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
WEB_WINDOW_ALERTS = Gauge(
    "web_window_alerts", "Scored alerts held in the scanning page's window", namespace=NAMESPACE
)
WEB_WINDOW_CANDIDATES = Gauge(
    "web_window_candidates", "Candidate events held in the window", namespace=NAMESPACE
)
WEB_WINDOW_OBJECTS = Gauge(
    "web_window_objects", "Objects with a scored alert in the window", namespace=NAMESPACE
)
WEB_FEED_MESSAGES = Counter(
    "web_feed_messages",
    "Messages the window feed read, per feed (scored, candidates)",
    ["feed"],
    namespace=NAMESPACE,
)
WEB_FEED_BYTES = Counter(
    "web_feed_bytes",
    "Bytes of message values the window feed read, per feed (a start reads the window)",
    ["feed"],
    namespace=NAMESPACE,
)
WEB_FEED_LAG = Gauge(
    "web_feed_lag",
    "Messages between the window feed's position and the end, summed over partitions",
    ["feed"],
    namespace=NAMESPACE,
)
WEB_NEWEST_ALERT = Gauge(
    "web_newest_alert_published_seconds",
    "Kafka timestamp (Unix time) of the newest scored alert the window feed read",
    namespace=NAMESPACE,
)
WEB_FEED_ERRORS = Counter(
    "web_feed_errors",
    "Problems of the window feed, by kind: unreachable (brokers), denied (authorisation), "
    "unknown_topic, undecodable (a message skipped), other",
    ["kind"],
    namespace=NAMESPACE,
)
WEB_REQUEST_SECONDS = Histogram(
    "web_request_seconds",
    "Time to answer a request of the scanning page, by route template (/objects/{object_id}, "
    "not the path); /static for files, refused for the token gate's 401s, unmatched for 404s",
    ["route"],
    namespace=NAMESPACE,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WEB_RESPONSES = Counter(
    "web_responses",
    "Responses of the scanning page, by status class (2xx, 3xx, 4xx, 5xx)",
    ["status"],
    namespace=NAMESPACE,
)

# -- preparation across processes (issue #12) ---------------------------------------------
PREPARATION_WORKERS = Gauge(
    "preparation_workers",
    "Preparation worker processes running (0: preparation in a thread of the service)",
    namespace=NAMESPACE,
)
PREPARATION_WORKER_DEATHS = Counter(
    "preparation_worker_deaths",
    "Preparation workers that died (killed, crashed) and were replaced",
    namespace=NAMESPACE,
)
PREPARATION_SLOTS_IN_USE = Gauge(
    "preparation_slots_in_use",
    "Shared-memory batch slots held (all in use: new batches wait)",
    namespace=NAMESPACE,
)
