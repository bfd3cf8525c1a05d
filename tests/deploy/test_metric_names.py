"""The helpers in metric_names.py, on small inputs whose answers are known: they must be
able to say no, or the dashboard/rules checks built on them prove nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.deploy.metric_names import (
    Expression,
    base_name,
    dashboard_expressions,
    exported_metric_names,
    exported_series_names,
    label_matchers,
    rule_expressions,
    series_in,
    to_promql,
    used_metric_names,
    used_series_names,
)

# Prometheus text format as prometheus_client writes it: a counter with a child, a
# labelled counter and a labelled histogram without children (HELP/TYPE only), a
# histogram with samples, a gauge, an info metric.
EXPOSITION = """\
# HELP demo_consumed_total Consumed
# TYPE demo_consumed_total counter
demo_consumed_total 3.0
# HELP demo_consumed_created Consumed
# TYPE demo_consumed_created gauge
demo_consumed_created 1.7e+09
# HELP demo_scored_total Scored, per model
# TYPE demo_scored_total counter
# HELP demo_seconds Per model
# TYPE demo_seconds histogram
# HELP demo_batch Batch
# TYPE demo_batch histogram
demo_batch_bucket{le="1.0"} 0.0
demo_batch_bucket{le="+Inf"} 0.0
demo_batch_count 0.0
demo_batch_sum 0.0
# HELP demo_lag Lag
# TYPE demo_lag gauge
demo_lag{partition="0",topic="t"} 5.0
# HELP demo_build_info Build
# TYPE demo_build_info gauge
demo_build_info{version="1"} 1.0
"""


def _expr(promql: str) -> list[Expression]:
    return [Expression("test", promql)]


def test_base_name_strips_type_suffixes() -> None:
    assert base_name("btsbot_alerts_consumed_total") == "btsbot_alerts_consumed"
    assert base_name("btsbot_batch_size_bucket") == "btsbot_batch_size"
    assert base_name("btsbot_inference_seconds_sum") == "btsbot_inference_seconds"
    assert base_name("btsbot_alert_latency_seconds_count") == "btsbot_alert_latency_seconds"
    assert base_name("btsbot_in_flight_alerts") == "btsbot_in_flight_alerts"
    assert base_name("_total") == "_total"


def test_exported_names_include_families_without_samples() -> None:
    assert exported_metric_names(EXPOSITION) == {
        "demo_consumed",
        "demo_scored",
        "demo_seconds",
        "demo_batch",
        "demo_lag",
        "demo_build_info",
    }


def test_exported_series_follow_the_metric_type() -> None:
    series = exported_series_names(EXPOSITION)
    # a histogram without children still has its _bucket/_sum/_count series names
    assert {"demo_seconds_bucket", "demo_seconds_sum", "demo_seconds_count"} <= series
    assert {"demo_scored_total", "demo_consumed_total", "demo_lag", "demo_build_info"} <= series
    # ...but a gauge has no _bucket, and a counter is never read without _total
    assert "demo_lag_bucket" not in series
    assert "demo_scored" not in series


def test_openmetrics_type_lines() -> None:
    text = "# TYPE demo_consumed counter\n# TYPE demo_build info\n# EOF\n"
    assert {"demo_consumed_total", "demo_build_info"} <= exported_series_names(text)
    assert exported_metric_names(text) == {"demo_consumed", "demo_build"}


def test_used_names_come_from_selectors_only() -> None:
    expr = _expr(
        'histogram_quantile(0.95, sum by (le, model) (rate(demo_seconds_bucket{model!=""}[5m])))'
        " / on (job) group_left sum(demo_lag) and absent(up)"
    )
    assert used_series_names(expr) == {"demo_seconds_bucket", "demo_lag"}
    assert used_metric_names(expr) == {"demo_seconds", "demo_lag"}


def test_name_matcher_selector_counts() -> None:
    assert series_in(Expression("t", 'sum({__name__="demo_lag", topic="t"})')) == {"demo_lag"}


def test_an_unknown_metric_is_detected() -> None:
    exported = exported_metric_names(EXPOSITION)
    typo = _expr('sum(rate(demo_consumd_total{job=~"$job"}[$__rate_interval]))')
    assert used_metric_names(typo) - exported == {"demo_consumd"}


def test_a_suffix_that_does_not_fit_the_type_is_detected() -> None:
    series = exported_series_names(EXPOSITION)
    # base names agree, but a gauge has no _bucket: only the series check catches it
    wrong = _expr("histogram_quantile(0.5, sum by (le) (rate(demo_lag_bucket[5m])))")
    assert used_metric_names(wrong) <= exported_metric_names(EXPOSITION)
    assert used_series_names(wrong) - series == {"demo_lag_bucket"}


def test_grafana_variables_become_parseable() -> None:
    text = (
        'sum(rate(demo_consumed_total{job=~"$job", instance=~"${instance:regex}"}'
        "[$__rate_interval]))"
    )
    promql = to_promql(text)
    assert "$" not in promql
    assert series_in(Expression("t", text)) == {"demo_consumed_total"}


def test_label_values_query_variable() -> None:
    query = 'label_values(demo_build_info{job=~"$job"}, instance)'
    assert series_in(Expression("variable", query)) == {"demo_build_info"}
    assert series_in(Expression("variable", "label_values(demo_build_info, job)")) == {
        "demo_build_info"
    }


def test_a_promql_syntax_error_names_its_place() -> None:
    with pytest.raises(ValueError, match="panel X"):
        series_in(Expression("panel X", "sum(rate(demo_consumed_total[5m])"))


def test_label_matchers() -> None:
    expr = Expression("t", 'demo_lag{topic="t", job="j"} > on (job) demo_build_info')
    assert label_matchers(expr) == {("demo_lag", "topic"), ("demo_lag", "job")}


def test_dashboard_reader_finds_nested_panels_and_variables(tmp_path: Path) -> None:
    dashboard = {
        "panels": [
            {"type": "row", "panels": [{"title": "inner", "targets": [{"expr": "demo_lag"}]}]},
            {"title": "outer", "targets": [{"expr": "demo_batch_count", "refId": "A"}]},
        ],
        "templating": {
            "list": [
                {"name": "ds", "type": "datasource", "query": "prometheus"},
                {"name": "job", "type": "query", "query": {"query": "label_values(up, job)"}},
            ]
        },
    }
    path = tmp_path / "d.json"
    path.write_text(json.dumps(dashboard))
    exprs = dashboard_expressions(path)
    assert [e.promql for e in exprs] == ["demo_lag", "demo_batch_count", "label_values(up, job)"]
    # `up` is Prometheus' own series, not the service's
    assert used_series_names(exprs) == {"demo_lag", "demo_batch_count"}


def test_rule_reader(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "groups:\n- name: g\n  rules:\n"
        "  - alert: A\n    expr: demo_lag > 1\n"
        "  - record: job:demo:rate5m\n    expr: rate(demo_consumed_total[5m])\n"
    )
    assert used_metric_names(rule_expressions(path)) == {"demo_lag", "demo_consumed"}
