"""The Grafana dashboard and the Prometheus rules read only metrics the service exports,
with labels those metrics have, and cover what an operator needs to see."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import promql_parser
import yaml
from prometheus_client.metrics import MetricWrapperBase
from tests.deploy.conftest import K8S, REPO, container, render, require_tool
from tests.deploy.metric_names import (
    DASHBOARD,
    RULES,
    SYNTHETIC,
    TARGET_LABELS,
    all_expressions,
    base_name,
    dashboard_expressions,
    exported_metric_names,
    exported_series_names,
    label_matchers,
    rule_expressions,
    series_in,
    used_metric_names,
    used_series_names,
)

OPERATOR_GUIDE = REPO / "docs" / "operator-guide.md"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
JOB = "btsbot-stream"


def _where(name: str) -> list[str]:
    return [e.where for e in all_expressions() if name in {base_name(s) for s in series_in(e)}]


def test_every_expression_parses() -> None:
    expressions = all_expressions()
    assert len(expressions) > 20
    for expression in expressions:
        series_in(expression)  # raises ValueError naming the panel or rule


def test_every_metric_used_is_exported(exposition: str) -> None:
    unknown = used_metric_names() - exported_metric_names(exposition)
    assert not unknown, {name: _where(name) for name in sorted(unknown)}


def test_every_series_used_fits_its_metric_type(exposition: str) -> None:
    unknown = used_series_names() - exported_series_names(exposition)
    assert not unknown, {name: _where(base_name(name)) for name in sorted(unknown)}


def _declared_labels() -> dict[str, tuple[str, set[str]]]:
    """Series base name -> (metric type, label names) from btsbot_stream.metrics."""
    from btsbot_stream import metrics

    declared = {}
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            for family in metric.describe():
                name = f"{family.name}_info" if family.type == "info" else family.name
                declared[name] = (family.type, set(metric._labelnames))
    return declared


def test_label_matchers_name_labels_the_metric_has() -> None:
    declared = _declared_labels()
    wrong = []
    for expression in all_expressions():
        for series, label in label_matchers(expression):
            if series in SYNTHETIC or label in TARGET_LABELS:
                continue
            kind, labels = declared[base_name(series)]
            if kind == "histogram" and series.endswith("_bucket"):
                labels = labels | {"le"}
            if label not in labels:
                wrong.append(f"{expression.where}: {series} has no label {label!r}")
    assert not wrong, wrong


def test_the_label_check_can_fail() -> None:
    declared = _declared_labels()
    assert "model" in declared["btsbot_execution_provider"][1]
    assert "reason" not in declared["btsbot_execution_provider"][1]


# --- the dashboard ------------------------------------------------------------------------


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _panels(items: list[dict]) -> list[dict]:
    out = []
    for panel in items:
        out.append(panel)
        out += _panels(panel.get("panels", []))
    return out


def test_dashboard_shows_what_operators_need() -> None:
    used = used_metric_names(dashboard_expressions())
    needed = {
        "btsbot_alerts_consumed",  # throughput
        "btsbot_alerts_scored",
        "btsbot_alerts_published",
        "btsbot_consumer_lag",  # lag per partition
        "btsbot_alert_latency_seconds",  # p50/p95/p99
        "btsbot_dead_letters",  # by reason
        "btsbot_batch_size",  # distribution
        "btsbot_inference_seconds",  # per model
        "btsbot_execution_provider",  # per model
        "btsbot_gpu_requested",
        "btsbot_in_flight_alerts",
        "btsbot_paused_partitions",
    }
    assert needed <= used, needed - used
    exprs = [e.promql for e in dashboard_expressions()]
    for quantile in ("0.5", "0.95", "0.99"):
        assert any(
            f"histogram_quantile({quantile}," in e and "btsbot_alert_latency_seconds_bucket" in e
            for e in exprs
        ), f"no p{quantile} latency panel"
    assert any("by (reason)" in e and "btsbot_dead_letters_total" in e for e in exprs)
    assert any("partition" in e and "btsbot_consumer_lag" in e for e in exprs)
    assert any("by (model" in e and "btsbot_inference_seconds" in e for e in exprs)


def test_dashboard_shows_the_scanning_page() -> None:
    """Its row: the window's size, the feed's lag, request latency by route template."""
    panels = _panels(_dashboard()["panels"])
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert "Scanning page (btsbot-stream web)" in rows
    used = used_metric_names(dashboard_expressions())
    assert {
        "btsbot_web_window_alerts",
        "btsbot_web_window_candidates",
        "btsbot_web_feed_lag",
        "btsbot_web_newest_alert_published_seconds",
        "btsbot_web_feed_errors",
        "btsbot_web_request_seconds",
        "btsbot_web_responses",
    } <= used
    exprs = [e.promql for e in dashboard_expressions()]
    assert any(
        "histogram_quantile(0.95," in e and "by (route, le)" in e and "btsbot_web_request" in e
        for e in exprs
    )
    # the gauges every process exports (at 0) are read from the page's targets only
    for e in exprs:
        if "btsbot_web_window_" in e or "btsbot_web_newest_alert" in e:
            assert 'component="web"' in e, e


def test_dashboard_is_tidy() -> None:
    dashboard = _dashboard()
    panels = _panels(dashboard["panels"])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    assert dashboard["uid"] == "btsbot-stream"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "job", "instance"} <= variables
    boxes = []
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"panel {panel['title']!r} is wider than the grid"
        boxes.append((panel["title"], grid))
        if panel["type"] == "row":
            continue
        assert panel.get("description"), f"panel {panel['title']!r} has no description"
        # every query goes through the datasource variable, so the dashboard imports anywhere
        for item in [panel, *panel.get("targets", [])]:
            assert item["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert 'job=~"$job"' in target["expr"] and 'instance=~"$instance"' in target["expr"]
    for i, (title_a, a) in enumerate(boxes):
        for title_b, b in boxes[i + 1 :]:
            overlap_x = a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            overlap_y = a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
            assert not (overlap_x and overlap_y), f"panels {title_a!r} and {title_b!r} overlap"


# --- the rules ------------------------------------------------------------------------------


def _rules() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in markdown.splitlines():
        match = re.match(r"^#{1,6}\s+(.*)$", line)
        if match:
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_rules_cover_the_failure_modes() -> None:
    rules = _rules()
    for alert in (
        "BtsbotConsumerLagGrowing",
        "BtsbotDeadLetterRateHigh",
        "BtsbotNoOutputWhileInputFlows",
        "BtsbotGpuRequestedButCpu",
        "BtsbotStreamDown",
        "BtsbotWebFeedStalled",
    ):
        assert alert in rules
    gpu = next(e for e in rule_expressions() if e.where.endswith("/BtsbotGpuRequestedButCpu"))
    assert {("btsbot_execution_provider", "provider"), ("btsbot_gpu_requested", "job")} <= (
        label_matchers(gpu)
    )
    assert 'provider="cpu"' in gpu.promql and "btsbot_gpu_requested" in gpu.promql
    down = next(e for e in rule_expressions() if e.where.endswith("/BtsbotStreamDown"))
    assert "up" in series_in(down)


def test_rules_are_well_formed_and_documented() -> None:
    anchors = _anchors(OPERATOR_GUIDE.read_text())
    for name, rule in _rules().items():
        assert re.fullmatch(r"Btsbot[A-Za-z]+", name)
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        promql_parser.parse_duration(rule["for"])
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        page, _, anchor = annotations["runbook"].partition("#")
        assert page == "docs/operator-guide.md" and anchor in anchors, (
            f"{name}: runbook {annotations['runbook']!r} is not a heading of the guide"
        )


def test_rules_select_the_scrape_job() -> None:
    """The rules filter on job="btsbot-stream": compose's job_name and, on Kubernetes,
    the PodMonitor's jobLabel (the pod's app.kubernetes.io/name) must give that job."""
    for expression in rule_expressions():
        for _series, label in label_matchers(expression):
            if label == "job":
                assert f'job="{JOB}"' in expression.promql, expression.where
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {c["job_name"]: c for c in config["scrape_configs"]}
    assert JOB in jobs
    assert jobs[JOB]["dns_sd_configs"][0]["port"] == 9108
    assert config["rule_files"] == ["/etc/prometheus/rules.yaml"]
    podmonitor = yaml.safe_load((REPO / "deploy/k8s/base/podmonitor.yaml").read_text())
    deployment = yaml.safe_load((REPO / "deploy/k8s/base/deployment.yaml").read_text())
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pod_labels[podmonitor["spec"]["jobLabel"]] == JOB


_POD_LABEL = "__meta_kubernetes_pod_label_"


def _relabel(configs: list[dict], labels: dict[str, str]) -> dict[str, str]:
    """Prometheus' `replace` relabeling (the default action): the source labels' values
    joined by ";" must match the anchored regex (default "(.*)")."""
    out = dict(labels)
    for config in configs:
        assert config.get("action", "replace") == "replace", config
        value = ";".join(out.get(name, "") for name in config["source_labels"])
        match = re.fullmatch(config.get("regex", "(.*)"), value)
        if match:
            replacement = re.sub(r"\$\{?(\d+)\}?", r"\\\1", config.get("replacement", "$1"))
            out[config["target_label"]] = match.expand(replacement)
    return out


def test_both_scrape_configs_label_each_stage_alike() -> None:
    """The target label `component` (scorer, decide) that BtsbotStreamAbsent selects the
    scorer by: compose's relabeling of each DNS name gives the component that the
    Kubernetes Deployment running the same command has on its pods, which the
    PodMonitor copies into `component`. Every stage serves metrics: the scorer, the
    decision stage and the scanning page (command `web`)."""
    podmonitor = yaml.safe_load((REPO / "deploy/k8s/base/podmonitor.yaml").read_text())
    (endpoint,) = podmonitor["spec"]["podMetricsEndpoints"]
    k8s = {
        container(d)["args"][0]: d["spec"]["template"]["metadata"]["labels"]
        for d in render(K8S / "overlays" / "cpu")
        if d["kind"] == "Deployment"
        and endpoint["port"] in {p["name"] for p in container(d)["ports"]}
    }
    assert set(k8s) == {"run", "decide", "web"}
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())["services"]
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    scrape = next(c for c in config["scrape_configs"] if c["job_name"] == JOB)
    names = [name for sd in scrape["dns_sd_configs"] for name in sd["names"]]
    for name in names:
        command = compose[name]["command"][0]
        component = _relabel(scrape["relabel_configs"], {"__meta_dns_name": name})["component"]
        assert component == k8s[command]["app.kubernetes.io/component"], name
    assert sorted(compose[name]["command"][0] for name in names) == sorted(k8s)
    relabelings = [
        {"source_labels": r["sourceLabels"], "target_label": r["targetLabel"]}
        for r in endpoint["relabelings"]
    ]
    for labels in k8s.values():
        # Prometheus' meta label of a pod label: characters outside [a-zA-Z0-9_] become _
        meta = {_POD_LABEL + re.sub(r"\W", "_", k): v for k, v in labels.items()}
        assert _relabel(relabelings, meta)["component"] == labels["app.kubernetes.io/component"]
    other = _relabel(scrape["relabel_configs"], {"__meta_dns_name": "other"})
    assert "component" not in other  # the relabeling check can fail
    absent = next(e for e in rule_expressions() if e.where.endswith("/BtsbotStreamAbsent"))
    assert 'component="scorer"' in absent.promql
    assert k8s["run"]["app.kubernetes.io/component"] == "scorer"


# --- the rules' behaviour, by promtool's rule unit tests --------------------------------


@dataclass(frozen=True)
class Scenario:
    """Input series (job="btsbot-stream" is added to each) and, at each evaluation time,
    the label sets each alert must fire with (besides job and severity). An alert not
    named at an evaluation time must not fire then."""

    name: str
    series: dict[str, str]
    fires: dict[str, dict[str, list[dict[str, str]]]]


SCENARIOS = (
    Scenario(
        "the scorer in trouble, the decision stage healthy",
        {
            # instance a: asked for a GPU, runs on the CPU, does not answer scrapes
            'btsbot_execution_provider{provider="cpu", model="m", instance="a"}': "1x40",
            'btsbot_gpu_requested{instance="a"}': "1x40",
            'up{instance="a", component="scorer"}': "0x40",
            # instance b: on its GPU; consumes, publishes nothing, dead-letters everything
            'btsbot_execution_provider{provider="cuda", model="m", instance="b"}': "1x40",
            'btsbot_gpu_requested{instance="b"}': "1x40",
            'up{instance="b", component="scorer"}': "1x40",
            'btsbot_alerts_consumed_total{instance="b"}': "0+100x40",
            'btsbot_alerts_published_total{instance="b"}': "0x40",
            'btsbot_dead_letters_total{instance="b", reason="cutout_jpeg"}': "0+100x40",
            # lag grows on one topic and shrinks on another
            'btsbot_consumer_lag{instance="b", topic="night1", partition="0"}': "20000+1000x40",
            'btsbot_consumer_lag{instance="b", topic="night2", partition="0"}': "90000-1000x40",
            # instance d: the decision stage, up, with nothing to take
            'up{instance="d", component="decide"}': "1x40",
            'btsbot_decide_alerts_total{instance="d", outcome="in_order"}': "0x40",
            'btsbot_decide_unreadable_total{instance="d", reason="not_scored"}': "0x40",
        },
        {
            "35m": {
                "BtsbotGpuRequestedButCpu": [{"instance": "a", "model": "m", "provider": "cpu"}],
                "BtsbotStreamDown": [{"instance": "a", "component": "scorer"}],
                "BtsbotNoOutputWhileInputFlows": [{}],
                "BtsbotDeadLetterRateHigh": [{}],
                "BtsbotConsumerLagGrowing": [{"topic": "night1"}],
            }
        },
    ),
    Scenario(
        "the decision stage stops taking alerts and skips unreadable ones",
        {
            'up{instance="s", component="scorer"}': "1x60",
            'btsbot_alerts_consumed_total{instance="s"}': "0+100x60",
            'btsbot_alerts_published_total{instance="s"}': "0+100x60",
            'up{instance="d", component="decide"}': "1x60",
            # takes alerts for 10 minutes, then none
            'btsbot_decide_alerts_total{instance="d", outcome="in_order"}': "0+100x10 1000x50",
            'btsbot_decide_unreadable_total{instance="d", reason="not_scored"}': "0+2x60",
            'btsbot_decide_unreadable_total{instance="d", reason="key_mismatch"}': "0x60",
        },
        {
            # still taking alerts; unreadable messages for less than the rule's 15 minutes
            "10m": {},
            "45m": {
                "BtsbotDecideStalled": [{}],
                "BtsbotDecideUnreadable": [{"reason": "not_scored"}],
            },
        },
    ),
    Scenario(
        "only the decision stage is scraped: the scorer is gone",
        {'up{instance="d", component="decide"}': "1x30"},
        {"5m": {}, "15m": {"BtsbotStreamAbsent": [{"component": "scorer"}]}},
    ),
    Scenario(
        "alerts wait, the scorer consumes none",
        {
            'up{instance="c", component="scorer"}': "1x40",
            'btsbot_alerts_consumed_total{instance="c"}': "5000x40",
            'btsbot_consumer_lag{instance="c", topic="night1", partition="0"}': "50000x40",
        },
        {"5m": {}, "35m": {"BtsbotConsumerStalled": [{}]}},
    ),
    Scenario(
        "the scorer keeps up, but 99% of its alerts take 60-300 s",
        {
            'up{instance="s", component="scorer"}': "1x40",
            'btsbot_alerts_consumed_total{instance="s"}': "0+100x40",
            'btsbot_alerts_published_total{instance="s"}': "0+100x40",
            'btsbot_alert_latency_seconds_bucket{instance="s", le="60"}': "0+1x40",
            'btsbot_alert_latency_seconds_bucket{instance="s", le="300"}': "0+100x40",
            'btsbot_alert_latency_seconds_bucket{instance="s", le="+Inf"}': "0+100x40",
            'up{instance="d", component="decide"}': "1x40",
            'btsbot_decide_alerts_total{instance="d", outcome="in_order"}': "0+100x40",
        },
        {"10m": {}, "35m": {"BtsbotAlertLatencyHigh": [{}]}},
    ),
    Scenario(
        "one scanning page stops reading while the scorer publishes, the other reads on",
        {
            'up{instance="s", component="scorer"}': "1x60",
            'btsbot_alerts_consumed_total{instance="s"}': "0+100x60",
            'btsbot_alerts_published_total{instance="s"}': "0+100x60",
            'up{instance="d", component="decide"}': "1x60",
            'btsbot_decide_alerts_total{instance="d", outcome="in_order"}': "0+100x60",
            # w1 reads for 10 minutes, then nothing; w2 all along
            'btsbot_web_feed_messages_total{instance="w1", component="web", feed="scored"}': (
                "0+100x10 1000x50"
            ),
            'btsbot_web_feed_messages_total{instance="w2", component="web", feed="scored"}': (
                "0+100x60"
            ),
            'btsbot_web_feed_messages_total{instance="w2", component="web", feed="candidates"}': (
                "0x60"
            ),
        },
        {"10m": {}, "45m": {"BtsbotWebFeedStalled": [{"instance": "w1"}]}},
    ),
    Scenario(
        "one scorer's preparation workers keep dying, another lost one once",
        {
            'up{instance="p1", component="scorer"}': "1x40",
            'up{instance="p2", component="scorer"}': "1x40",
            'btsbot_alerts_consumed_total{instance="p1"}': "0+100x40",
            'btsbot_alerts_published_total{instance="p1"}': "0+100x40",
            'btsbot_alerts_consumed_total{instance="p2"}': "0+100x40",
            'btsbot_alerts_published_total{instance="p2"}': "0+100x40",
            'btsbot_preparation_worker_deaths_total{instance="p1"}': "0x5 0+1x35",
            'btsbot_preparation_worker_deaths_total{instance="p2"}': "0 1x39",
            'up{instance="d", component="decide"}': "1x40",
            'btsbot_decide_alerts_total{instance="d", outcome="in_order"}': "0+100x40",
        },
        {
            "5m": {},
            "30m": {"BtsbotPreparationWorkersDying": [{"instance": "p1"}]},
        },
    ),
    Scenario(
        "daytime: nothing published, so a page that reads nothing is not stalled",
        {
            'up{instance="s", component="scorer"}': "1x60",
            'btsbot_alerts_consumed_total{instance="s"}': "5000x60",
            'btsbot_alerts_published_total{instance="s"}': "5000x60",
            'up{instance="d", component="decide"}': "1x60",
            'btsbot_decide_alerts_total{instance="d", outcome="in_order"}': "5000x60",
            'btsbot_web_feed_messages_total{instance="w", component="web", feed="scored"}': (
                "5000x60"
            ),
        },
        {"45m": {}},
    ),
)


def test_every_rule_fires_in_a_scenario_and_stays_quiet_in_another() -> None:
    fired = {a for s in SCENARIOS for at in s.fires.values() for a, sets in at.items() if sets}
    quiet = {a for s in SCENARIOS for at in s.fires.values() for a in _rules() if not at.get(a)}
    assert fired == set(_rules()), "add the new alert to a scenario in which it fires"
    assert quiet == set(_rules())


def test_rules_fire_when_they_should(tmp_path: Path) -> None:
    """promtool's rule unit tests on each scenario, every rule at every evaluation time;
    annotations are left out of the copy of the rules it runs, so their wording can
    change freely. `make tools` builds promtool from the Go module proxy (cached; see the
    Makefile)."""
    promtool = require_tool("promtool")
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    job = {"job": JOB}
    severity = {name: rule["labels"]["severity"] for name, rule in _rules().items()}
    tests = [
        {
            "name": scenario.name,
            "interval": "1m",
            "input_series": [
                {"series": s.replace("{", f'{{job="{JOB}", ', 1), "values": v}
                for s, v in scenario.series.items()
            ],
            "alert_rule_test": [
                {
                    "eval_time": at,
                    "alertname": alert,
                    "exp_alerts": [
                        {"exp_labels": {**job, **labels, "severity": severity[alert]}}
                        for labels in firing.get(alert, [])
                    ],
                }
                for at, firing in scenario.fires.items()
                for alert in sorted(severity)
            ],
        }
        for scenario in SCENARIOS
    ]
    scenario_file = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(scenario_file))
    result = subprocess.run(
        [promtool, "test", "rules", "test.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
