"""Metric names used by the Grafana dashboard and the Prometheus rules, and metric names
a service exports, so tests can check the first are a subset of the second.

Names are compared two ways:

- *series* names, exactly as written in PromQL or exposed in a scrape
  (``btsbot_batch_size_bucket``, ``btsbot_alerts_consumed_total``);
- *base* names, with the suffixes a metric type adds removed (``_total``, ``_created``
  of counters; ``_bucket``, ``_sum``, ``_count`` of histograms and summaries), so
  ``btsbot_batch_size_bucket`` and ``btsbot_batch_size`` are the same metric.

The same suffix-stripping applies to both sides, so a gauge that happens to end in
``_count`` compares equal to itself. Exposition text is read from its ``# TYPE`` lines
as well as its samples: a labelled metric with no children yet exports no samples but
does export its ``# HELP``/``# TYPE`` lines.

PromQL is parsed by ``promql-parser`` (a real parser, so a syntax error in a panel or a
rule fails too), after Grafana's ``$variables`` are replaced by placeholders.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import promql_parser
import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "btsbot-stream.json"
RULES = REPO / "deploy" / "prometheus" / "rules.yaml"

# Series Prometheus itself attaches to every target; no service exports them.
SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
# Labels a scrape adds to every series (compose: job, instance; the Prometheus Operator
# also adds namespace, pod, container...; both scrape configs add component, the stage).
TARGET_LABELS = frozenset(
    {"job", "instance", "component", "namespace", "pod", "container", "endpoint"}
)

_SUFFIXES = ("_total", "_created", "_bucket", "_sum", "_count")
# Grafana variables: $__rate_interval, ${var}, ${var:regex}, [[var]], $var.
_GRAFANA_INTERVAL = re.compile(r"\$__(?:rate_)?interval|\$__range|\$\{__(?:rate_)?interval\}")
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]+\}|\[\[[^\]]+\]\]|\$\w+")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<selector>.*?)\s*(?:,\s*\w+\s*)?\)\s*$")
_EXPOSITION_TYPE = re.compile(r"^#\s+(?:HELP|TYPE)\s+(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)")
_EXPOSITION_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)")
_TYPE_LINE = re.compile(r"^#\s+TYPE\s+(?P<name>\S+)\s+(?P<type>\S+)")


@dataclass(frozen=True)
class Expression:
    """One PromQL expression and where it was found (for error messages)."""

    where: str
    promql: str


def base_name(series: str) -> str:
    """``btsbot_batch_size_bucket`` -> ``btsbot_batch_size``; other names unchanged."""
    for suffix in _SUFFIXES:
        if series.endswith(suffix) and len(series) > len(suffix):
            return series[: -len(suffix)]
    return series


def to_promql(text: str) -> str:
    """A Grafana query made parseable: variables replaced by placeholders.

    ``label_values(selector, label)`` (a Grafana function, not PromQL) becomes its selector.
    Variables inside label matchers become ``.*``-like strings, durations become ``5m``.
    """
    match = _LABEL_VALUES.match(text)
    if match:
        text = match.group("selector")
    text = _GRAFANA_INTERVAL.sub("5m", text)
    return _GRAFANA_VARIABLE.sub("grafana_variable", text)


def parse(expression: Expression) -> promql_parser.Expr:
    try:
        return promql_parser.parse(to_promql(expression.promql))
    except ValueError as exc:
        raise ValueError(f"{expression.where}: {exc}: {expression.promql!r}") from exc


def selectors(expression: Expression) -> Iterator[promql_parser.VectorSelector]:
    """Every vector selector in the expression (inside range vectors too)."""
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        return True

    promql_parser.walk(parse(expression), visit)
    yield from found


def selector_name(selector: promql_parser.VectorSelector) -> str | None:
    if selector.name:
        return str(selector.name)
    for matcher in selector.matchers.matchers:  # {__name__="..."}
        if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
            return str(matcher.value)
    return None


def series_in(expression: Expression) -> set[str]:
    """Series names an expression reads (metric identifiers of its selectors)."""
    names = {selector_name(s) for s in selectors(expression)}
    return {n for n in names if n}


def dashboard_expressions(path: Path = DASHBOARD) -> list[Expression]:
    """Panel targets (rows' nested panels included) and query-variable definitions."""
    dashboard = json.loads(path.read_text())
    found: list[Expression] = []

    def panels(items: list[dict]) -> Iterator[dict]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                where = f"{path.name}: panel {panel.get('title')!r} target {target.get('refId')}"
                found.append(Expression(where, target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if query:
            found.append(Expression(f"{path.name}: variable {variable['name']!r}", query))
    return found


def rule_expressions(path: Path = RULES) -> list[Expression]:
    """The ``expr`` of every alerting and recording rule."""
    rules = yaml.safe_load(path.read_text())
    found = []
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            found.append(Expression(f"{path.name}: {group['name']}/{name}", rule["expr"]))
    return found


def all_expressions() -> list[Expression]:
    return dashboard_expressions() + rule_expressions()


def used_series_names(expressions: list[Expression] | None = None) -> set[str]:
    """Series names read by the dashboard and the rules (Prometheus' own excluded)."""
    exprs = all_expressions() if expressions is None else expressions
    names: set[str] = set()
    for expression in exprs:
        names |= series_in(expression)
    return names - SYNTHETIC


def used_metric_names(expressions: list[Expression] | None = None) -> set[str]:
    """Base metric names read by the dashboard and the rules (see :func:`base_name`)."""
    return {base_name(n) for n in used_series_names(expressions)}


def exported_series_names(text: str) -> set[str]:
    """Every series name a scrape with this exposition text can contain.

    Sample lines give the names present now; ``# TYPE`` lines give the names a metric
    family will have once it has children (a histogram's ``_bucket``/``_sum``/``_count``,
    a counter's ``_total``), in both the Prometheus text format and OpenMetrics.
    """
    names: set[str] = set()
    for line in text.splitlines():
        type_line = _TYPE_LINE.match(line)
        if type_line:
            name, kind = type_line.group("name"), type_line.group("type")
            if kind == "counter":
                stem = base_name(name) if name.endswith("_total") else name
                names |= {f"{stem}_total", f"{stem}_created"}
            elif kind in ("histogram", "gaugehistogram"):
                names |= {name, *(f"{name}{s}" for s in ("_bucket", "_sum", "_count", "_created"))}
            elif kind == "summary":
                names |= {name, *(f"{name}{s}" for s in ("_sum", "_count", "_created"))}
            elif kind == "info":
                names |= {name if name.endswith("_info") else f"{name}_info"}
            else:
                names.add(name)
            continue
        sample = _EXPOSITION_SAMPLE.match(line)
        if sample and not line.startswith("#"):
            names.add(sample.group("name"))
    return names


def exported_metric_names(text: str) -> set[str]:
    """Base names of every metric family in Prometheus exposition text."""
    names: set[str] = set()
    for line in text.splitlines():
        match = _EXPOSITION_TYPE.match(line)
        if not match and not line.startswith("#"):
            match = _EXPOSITION_SAMPLE.match(line)
        if match:
            names.add(base_name(match.group("name")))
    return names


def label_matchers(expression: Expression) -> set[tuple[str, str]]:
    """``(series name, label name)`` for every label matcher on a named selector."""
    pairs = set()
    for selector in selectors(expression):
        name = selector_name(selector)
        if name:
            pairs |= {(name, m.name) for m in selector.matchers.matchers if m.name != "__name__"}
    return pairs
