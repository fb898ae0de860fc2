"""The observability configuration as shipped: Prometheus config and rules (checked and unit-tested by
promtool), Alertmanager routes (amtool), the Grafana dashboards' structure and the compose services."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from spanishgas.observability.dashboards import all_dashboards, render
from tests.conftest import require_program

pytestmark = pytest.mark.unit

ROOT = Path(__file__).parents[2]
MONITORING = ROOT / "monitoring"
PROMETHEUS = MONITORING / "prometheus"
ALERTMANAGER = MONITORING / "alertmanager" / "alertmanager.yml"
GRAFANA = MONITORING / "grafana"
# Grafana's own variables (filled by Grafana itself, never declared in a dashboard).
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range", "__timeFilter", "__all"}
PANEL_TYPES = {"row", "timeseries", "stat", "table", "bargauge"}


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "rules" / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _dashboards() -> dict[str, dict[str, Any]]:
    import json

    return {p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def _provisioned_uids() -> set[str]:
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "datasources.yml").read_text())
    return {s["uid"] for s in sources["datasources"]}


# -- Prometheus and Alertmanager ----------------------------------------------------------------------


def test_promtool_accepts_the_config_and_the_rules() -> None:
    promtool = require_program("promtool")
    config = _run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    assert "2 rule files found" in config.stdout
    rules = _run(promtool, "check", "rules", *map(str, sorted((PROMETHEUS / "rules").glob("*.yml"))))
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_promtool_unit_tests_pass_and_would_catch_a_wrong_alert(tmp_path: Path) -> None:
    promtool = require_program("promtool")
    passed = _run(promtool, "test", "rules", "tests/alerts.test.yml", cwd=PROMETHEUS)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    # The same tests against a rule that never fires must fail: the tests really look at the alerts.
    broken = tmp_path / "prometheus"
    (broken / "rules").mkdir(parents=True)
    (broken / "tests").mkdir()
    (broken / "rules" / "recording.yml").write_text((PROMETHEUS / "rules" / "recording.yml").read_text())
    text = (PROMETHEUS / "rules" / "alerts.yml").read_text()
    (broken / "rules" / "alerts.yml").write_text(text.replace('up{job="spanishgas_api"} == 0', 'up{job="nope"} == 0'))
    (broken / "tests" / "alerts.test.yml").write_text((PROMETHEUS / "tests" / "alerts.test.yml").read_text())
    failed = _run(promtool, "test", "rules", "tests/alerts.test.yml", cwd=broken)
    assert failed.returncode != 0 and "SpanishGasAPIDown" in failed.stdout + failed.stderr


def test_every_alert_has_for_severity_annotations_and_a_runbook() -> None:
    runbook = (ROOT / "docs" / "monitoring.md").read_text()
    titles = re.findall(r"^#+ (.+)$", runbook, re.M)
    headings = {re.sub(r"[^a-z0-9 -]", "", t.strip().lower()).replace(" ", "-") for t in titles}
    alerts = _alerts()
    assert len(alerts) >= 13
    for rule in alerts:
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), name
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), name
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor == name.lower() and anchor in headings, f"docs/monitoring.md needs a runbook heading {name}"


def test_every_alert_fires_and_stays_silent_in_the_promtool_tests() -> None:
    tests = yaml.safe_load((PROMETHEUS / "tests" / "alerts.test.yml").read_text())["tests"]
    fired, silent = set(), set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in _alerts()}
    assert names - fired == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown silent"


def test_alertmanager_config_is_valid_and_routes_by_severity() -> None:
    amtool = require_program("amtool")
    check = _run(amtool, "check-config", str(ALERTMANAGER))
    assert check.returncode == 0, check.stdout + check.stderr
    severities = {rule["labels"]["severity"] for rule in _alerts()}
    expected = {"critical": "ops-pager", "warning": "ops-tickets"}
    assert severities == set(expected)
    for severity, receiver in expected.items():
        routed = _run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", f"severity={severity}")
        assert routed.stdout.strip() == receiver, routed.stdout + routed.stderr


# -- Grafana ------------------------------------------------------------------------------------------


def test_committed_dashboards_are_the_generated_ones() -> None:
    generated = all_dashboards()
    on_disk = {p.name for p in (GRAFANA / "dashboards").glob("*.json")}
    assert on_disk == set(generated), "run: spanishgas dashboards"
    for name, dashboard in generated.items():
        assert (GRAFANA / "dashboards" / name).read_text() == render(dashboard), f"run: spanishgas dashboards ({name})"


def test_dashboards_have_the_fixed_uids_the_docs_name() -> None:
    uids = {d["uid"] for d in _dashboards().values()}
    assert uids == {"spanishgas-scoring-api", "spanishgas-drift-model-health", "spanishgas-pipeline-quality"}
    docs = (ROOT / "docs" / "monitoring.md").read_text()
    assert all(uid in docs for uid in uids)


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard["panels"])


def test_panels_have_unique_ids_and_fit_the_grid_without_overlapping() -> None:
    for name, dashboard in _dashboards().items():
        panels = _panels(dashboard)
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids)), name
        cells: set[tuple[int, int]] = set()
        for p in panels:
            assert p["type"] in PANEL_TYPES, (name, p["title"])
            g = p["gridPos"]
            assert g["x"] >= 0 and g["y"] >= 0 and g["w"] > 0 and g["h"] > 0, (name, p["title"])
            assert g["x"] + g["w"] <= 24, (name, p["title"])
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not mine & cells, f"{name}: {p['title']} overlaps another panel"
            cells |= mine
            if p["type"] != "row":
                assert p["title"] and p["description"] and p["targets"], (name, p["title"])


def test_every_datasource_is_a_provisioned_uid() -> None:
    provisioned = _provisioned_uids()
    for name, dashboard in _dashboards().items():
        refs = [p["datasource"] for p in _panels(dashboard) if "datasource" in p]
        refs += [t["datasource"] for p in _panels(dashboard) for t in p.get("targets", [])]
        refs += [v["datasource"] for v in dashboard["templating"]["list"]]
        assert refs and all(isinstance(r, dict) and r["uid"] in provisioned for r in refs), name


def test_every_variable_used_is_declared_and_every_declared_one_used() -> None:
    for name, dashboard in _dashboards().items():
        declared = {v["name"] for v in dashboard["templating"]["list"]}
        used: set[str] = set()
        for p in _panels(dashboard):
            for t in p.get("targets", []):
                used |= set(re.findall(r"\$\{?(\w+)", t.get("expr", "") + t.get("rawSql", "")))
        assert used - declared - GRAFANA_BUILTINS == set(), name
        assert declared <= used, f"{name}: declared variables no panel uses"


def test_grafana_provisioning_points_at_the_dashboards_folder_compose_mounts() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "spanishgas.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    assert f"./monitoring/grafana/dashboards:{path}:ro" in grafana["volumes"]
    assert "./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]


def test_compose_runs_the_observability_services_with_healthchecks_and_the_shipped_files() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("prometheus", "pushgateway", "alertmanager", "grafana"):
        service = services[name]
        assert service["healthcheck"]["test"], name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"
            else:
                assert source in compose["volumes"], f"{name} uses volume {source}, not declared"
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
    # The config Prometheus loads scrapes the compose services by their names and ports.
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert {"api:8000", "pushgateway:9091", "localhost:9090"} <= targets
    assert "api" in services and "pushgateway" in services
