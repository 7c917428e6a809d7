"""deploy/observability offline: Prometheus' configuration (promtool when installed), the Grafana provisioning, and
the dashboards' structure (every query panel on the provisioned datasource, unique ids, an expr per target).

Whether the metrics the panels query are exported is checked against a running edge and actions service in
tests/edge/observability/test_dashboard_metrics.py; the compose wiring in tests/compose/test_compose_file.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.dashboards import DASHBOARDS, OBSERVABILITY, dashboards, expressions, metric_names, panels

PROVISIONING = OBSERVABILITY / "grafana" / "provisioning"
GRID_COLUMNS = 24


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _datasources() -> list[dict[str, Any]]:
    return [d for path in sorted((PROVISIONING / "datasources").glob("*.yml")) for d in _yaml(path)["datasources"]]


@pytest.fixture(scope="module")
def provisioned_uid() -> str:
    [datasource] = _datasources()
    assert datasource["type"] == "prometheus" and datasource.get("isDefault") is True
    return str(datasource["uid"])


def test_there_are_dashboards_and_each_has_a_unique_uid_and_title() -> None:
    found = dashboards()
    assert {path.name for path in found} >= {"hasura-edge.json", "actions.json"}
    uids = [dashboard["uid"] for dashboard in found.values()]
    titles = [dashboard["title"] for dashboard in found.values()]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles)


def test_every_query_panel_uses_the_provisioned_datasource(provisioned_uid: str) -> None:
    for path, dashboard in dashboards().items():
        for panel in panels(dashboard):
            where = f"{path.name}: {panel.get('title')!r}"
            if panel["type"] == "row":
                assert not panel.get("targets"), f"{where}: a row has no queries"
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": provisioned_uid}, where
            assert panel["targets"], f"{where}: no query"
            for target in panel["targets"]:
                assert target.get("datasource", panel["datasource"]) == panel["datasource"], where
                assert isinstance(target.get("expr"), str) and target["expr"].strip(), f"{where}: a target without expr"
            ref_ids = [target["refId"] for target in panel["targets"]]
            assert len(set(ref_ids)) == len(ref_ids), f"{where}: repeated refId"


def test_panel_ids_are_unique_and_panels_fit_the_grid() -> None:
    for path, dashboard in dashboards().items():
        ids = [panel["id"] for panel in panels(dashboard)]
        assert len(set(ids)) == len(ids), f"{path.name}: repeated panel ids"
        occupied: set[tuple[int, int]] = set()
        for panel in panels(dashboard):
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["w"] >= 1 and grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
            cells = {(grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])}
            assert not cells & occupied, f"{path.name}: {panel['title']!r} overlaps another panel"
            occupied |= cells
        assert all(panel.get("title") for panel in panels(dashboard))


def test_the_dashboard_provider_reads_the_dashboards_directory() -> None:
    providers = [p for path in sorted((PROVISIONING / "dashboards").glob("*.yml")) for p in _yaml(path)["providers"]]
    assert [provider["type"] for provider in providers] == ["file"]
    assert providers[0]["allowUiUpdates"] is False  # the repository's JSON is the source of truth
    assert sorted(DASHBOARDS.glob("*.json")), "the provider's directory holds the dashboards"
    assert all(path.suffix in (".yml", ".yaml") for path in PROVISIONING.rglob("*") if path.is_file())


# --- PromQL ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("sum by (code) (rate(edge_rejections_total[$__rate_interval]))", {"edge_rejections_total"}),
        (
            'histogram_quantile(0.95, sum by (le, route) (rate(actions_request_duration_seconds_bucket{a!="x"}[5m])))',
            {"actions_request_duration_seconds_bucket"},
        ),
        ('sum(rate(a_total{result="hit"}[1m])) / sum(rate(b_total[1m]))', {"a_total", "b_total"}),
        ('up{job=~"edge|actions"}', {"up"}),
        ("x_total offset 5m and on (plan) y > bool 0", {"x_total", "y"}),
        ('{__name__="ignored"} + sum without (instance) (z)', {"z"}),
        ('label_replace(m, "dst", "$1", "src", "(.*)")', {"m"}),
    ],
)
def test_metric_names_of_an_expression(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def _promtool() -> str:
    """promtool on PATH, else the one ``make install`` unpacks next to the virtualenv's python."""
    beside = Path(sys.executable).parent / "promtool"
    path = shutil.which("promtool") or (str(beside) if beside.is_file() else None)
    if path is None:
        pytest.skip("promtool is not installed (make install unpacks it from Debian's prometheus package)")
    return path


def test_prometheus_configuration_passes_promtool() -> None:
    result = subprocess.run(
        [_promtool(), "check", "config", str(OBSERVABILITY / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_catches_a_broken_configuration(tmp_path: Path) -> None:
    broken = tmp_path / "prometheus.yml"
    broken.write_text("scrape_configs:\n  - job_name: edge\n    scrape_intervall: 15s\n", encoding="utf-8")
    result = subprocess.run([_promtool(), "check", "config", str(broken)], capture_output=True, timeout=60, check=False)
    assert result.returncode != 0


def test_every_dashboard_expression_parses_with_promtool(tmp_path: Path) -> None:
    """The expressions as recording rules (Grafana's $__ variables replaced by durations): promtool parses each."""
    promtool = _promtool()
    rules = []
    for dashboard in dashboards().values():
        for index, (_, expr) in enumerate(expressions(dashboard)):
            concrete = expr.replace("$__rate_interval", "1m").replace("$__range", "1h")
            rules.append({"record": f"dashboard:{dashboard['uid'].replace('-', '_')}:{index}", "expr": concrete})
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "r", "expr": "sum by (code (x)"}]}]}),
        encoding="utf-8",
    )
    assert subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, check=False).returncode != 0
