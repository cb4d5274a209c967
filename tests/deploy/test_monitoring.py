"""The Grafana dashboard and the Prometheus alert rules, against Grafana's dashboard schema, a real
PromQL parser, and the metrics the services actually register in prometheus_client.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from jsonschema import Draft7Validator

from tests.deploy.support import (
    PROMETHEUS_BUILTIN_SERIES,
    REPO,
    exported_metric_names,
    load_yaml,
    output_labels,
    parse_promql,
    promql_metric_names,
    template_labels,
)

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "ml-connector.json"
DASHBOARD_SCHEMA = REPO / "tests" / "deploy" / "schemas" / "grafana-dashboard.jsonschema.json"
DATASOURCES = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
OPERATIONS = REPO / "docs" / "operations.md"
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


@pytest.fixture(scope="module")
def exported() -> set[str]:
    return exported_metric_names()


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in query_panels(dashboard) for t in p["targets"]]


def test_the_metric_list_is_read_from_the_code(exported: set[str]) -> None:
    assert {
        "mlc_records_consumed_total",
        "mlc_loader_request_seconds_bucket",
        "mlc_consumer_lag_records",
        "process_resident_memory_bytes",
    } <= exported
    assert "mlc_records_consumed" not in exported  # a counter is only ever exposed with _total
    assert promql_metric_names("rate(mlc_no_such_metric_total[5m])") - exported == {
        "mlc_no_such_metric_total"
    }


# ----- dashboard ------------------------------------------------------------------------------------


def test_dashboard_follows_grafanas_dashboard_schema(dashboard: dict[str, Any]) -> None:
    validator = Draft7Validator(json.loads(DASHBOARD_SCHEMA.read_text(encoding="utf-8")))
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(dashboard)]
    assert not errors, "\n".join(errors[:20])
    broken = copy.deepcopy(dashboard)
    broken["panels"][1]["gridPos"]["x"] = 24
    assert list(validator.iter_errors(broken)), "the schema check accepts a panel outside the grid"


def test_dashboard_has_an_identity_and_every_panel_a_place_and_queries(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "ml-connector" and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], int] = {}
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps panel {cells[(x, y)]}"
                cells[(x, y)] = panel["id"]
    for panel in query_panels(dashboard):
        assert panel["title"] and panel["description"], panel["id"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_dashboard_queries_the_provisioned_prometheus(dashboard: dict[str, Any]) -> None:
    (datasource,) = load_yaml(DATASOURCES)["datasources"]
    expected = {"type": datasource["type"], "uid": datasource["uid"]}
    for panel in query_panels(dashboard):
        assert panel["datasource"] == expected, panel["title"]
        assert all(t["datasource"] == expected for t in panel["targets"]), panel["title"]


def test_every_dashboard_query_is_valid_promql(dashboard: dict[str, Any]) -> None:
    for expr in dashboard_exprs(dashboard):
        parse_promql(expr)


def test_every_metric_on_the_dashboard_is_exported_by_the_code(
    dashboard: dict[str, Any], exported: set[str]
) -> None:
    used = set().union(*(promql_metric_names(e) for e in dashboard_exprs(dashboard)))
    assert used - exported == set(), "the dashboard shows metrics no service exports"


def test_dashboard_covers_throughput_lag_failures_mailchimp_and_polling(dashboard: dict[str, Any]) -> None:
    used = set().union(*(promql_metric_names(e) for e in dashboard_exprs(dashboard)))
    assert {
        "mlc_records_consumed_total",  # throughput per stage
        "mlc_records_produced_total",
        "mlc_consumer_lag_records",  # lag
        "mlc_dead_letters_total",  # failures by reason
        "mlc_loader_failed_total",
        "mlc_loader_requests_total",  # Mailchimp answers, 429s among them
        "mlc_loader_throttled_total",
        "mlc_loader_request_seconds_bucket",  # Mailchimp latency
        "mlc_poller_last_success_timestamp_seconds",  # last successful poll
    } <= used


# ----- alert rules ----------------------------------------------------------------------------------


def test_alert_rules_have_the_prometheus_rule_file_shape() -> None:
    document = load_yaml(ALERTS)
    assert set(document) == {"groups"}
    group_names = [g["name"] for g in document["groups"]]
    assert len(group_names) == len(set(group_names))
    alert_names = []
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"} and group["rules"], group["name"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule
            assert re.fullmatch(r"Mlc[A-Z][A-Za-z]+", rule["alert"]), rule["alert"]
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert DURATION.match(rule.get("for", "0s")), rule["alert"]
            assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
            alert_names.append(rule["alert"])
    assert len(alert_names) == len(set(alert_names))


def test_every_alert_expression_is_valid_promql(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        try:
            parse_promql(rule["expr"])
        except ValueError as exc:
            pytest.fail(f"{rule['alert']}: {exc}")


def test_every_metric_an_alert_uses_is_exported_by_the_code(
    rules: list[dict[str, Any]], exported: set[str]
) -> None:
    for rule in rules:
        unknown = promql_metric_names(rule["expr"]) - exported - PROMETHEUS_BUILTIN_SERIES
        assert not unknown, f"{rule['alert']} uses metrics no service exports: {sorted(unknown)}"


def test_alert_annotations_name_only_labels_the_expression_keeps(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        labels = output_labels(parse_promql(rule["expr"]))
        if labels is None:  # the labels of the scraped series pass through
            continue
        referenced = set().union(*(template_labels(text) for text in rule["annotations"].values()))
        assert referenced <= labels, (
            f"{rule['alert']} refers to {sorted(referenced - labels)}, gone after {labels}"
        )


def test_the_label_check_sees_labels_an_aggregation_drops() -> None:
    assert output_labels(parse_promql("sum by (service) (rate(mlc_dead_letters_total[5m])) > 0")) == {
        "service"
    }
    assert output_labels(parse_promql('absent(mlc_service_info{service="poller"})')) == {"service"}


def test_alerts_cover_polling_lag_failure_rate_and_dead_letters(rules: list[dict[str, Any]]) -> None:
    uses = {rule["alert"]: promql_metric_names(rule["expr"]) for rule in rules}

    def alerting_on(metric: str) -> list[str]:
        return [name for name, metrics in uses.items() if metric in metrics]

    assert alerting_on("mlc_poller_last_success_timestamp_seconds"), (
        "no alert for a poller that stopped succeeding"
    )
    assert alerting_on("mlc_consumer_lag_records"), "no alert for growing consumer lag"
    assert alerting_on("mlc_loader_failed_total"), "no alert on the loader's failure rate"
    assert alerting_on("mlc_dead_letters_total"), "no alert on dead-letter growth"


def test_every_alert_is_explained_in_the_operations_guide(rules: list[dict[str, Any]]) -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    match = re.search(r"^## Monitoring\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, "docs/operations.md has no '## Monitoring' section"
    missing = [rule["alert"] for rule in rules if f"`{rule['alert']}`" not in match[1]]
    assert not missing, f"alerts not documented under Monitoring: {missing}"
