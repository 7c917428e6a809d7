"""The Grafana dashboards in deploy/observability: their panels, PromQL expressions, and the metric names those read.

``metric_names(expr)`` is a small PromQL reader, enough for the dashboards' expressions: it drops string
literals, label matchers (``{...}``), range and subquery durations (``[...]``) and the label lists of
``by``/``without``/``on``/``ignoring``/``group_left``/``group_right``; what is left that is an identifier not
followed by ``(`` (a function or an aggregation) and not an operator keyword is a metric name.
``exported_names(families)`` turns a parsed exposition into the names a query can select: its samples' names
(a histogram's ``_bucket``/``_sum``/``_count``, a counter's ``_total``), never a family without samples.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import Metric

REPO_ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = REPO_ROOT / "deploy" / "observability"
DASHBOARDS = OBSERVABILITY / "grafana" / "dashboards"

PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
"""Series Prometheus writes itself for every target, not read from any /metrics."""

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "Inf", "NaN"})


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call is None and name not in _KEYWORDS:
            names.add(name)
    return names


def dashboards() -> dict[Path, dict[str, Any]]:
    """Every dashboard JSON Grafana is provisioned with, by file."""
    return {path: json.loads(path.read_text(encoding="utf-8")) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, expr) of every query target."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def queried_metrics(dashboard: dict[str, Any]) -> dict[str, set[str]]:
    """Metric name -> titles of the panels that query it."""
    found: dict[str, set[str]] = {}
    for title, expr in expressions(dashboard):
        for name in metric_names(expr):
            found.setdefault(name, set()).add(title)
    return found


def exported_names(families: Iterable[Metric]) -> set[str]:
    """The sample names of a parsed exposition (what Prometheus stores: ``_bucket``, ``_total``...)."""
    return {sample.name for family in families for sample in family.samples}
