"""docker-compose.yml, checked without a Docker engine: the Compose Specification's JSON schema, the
settings the code reads, mounts and secrets against the paths the environment names, the simulator
profile against the simulators, and Prometheus' scrape targets against the services' ports.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from jsonschema import Draft7Validator

from shared.connections import load_connections
from shared.settings import DEFAULT_PORTS, MailchimpSettings
from simulators._server import ServerThread
from simulators.mailchimp import MailchimpSimConfig, MailchimpSimulator
from simulators.syspro import SysproSimConfig, SysproSimulator
from tests.deploy.support import (
    REPO,
    REQUIRED_ENV,
    SERVICES,
    command_of,
    command_settings,
    load_settings_from,
    load_yaml,
    missing_required,
    required_env,
    settings_env_names,
)

COMPOSE = REPO / "docker-compose.yml"
SCHEMA = REPO / "tests" / "deploy" / "schemas" / "compose-spec.json"
SIM_ENV = REPO / "deploy" / "compose" / "sim.env"
PROMETHEUS = REPO / "deploy" / "prometheus" / "prometheus.yml"
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    return Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def product_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run ml-connector's own image (built from the repository's Dockerfile)."""
    return {name: svc for name, svc in compose["services"].items() if isinstance(svc.get("build"), dict)}


def interpolate(value: str, variables: dict[str, str] | None = None) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``, with ``variables`` as the .env."""
    variables = variables or {}

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        if variables.get(name):
            return variables[name]
        if op.endswith("?"):
            return f"operator-supplied-{name.lower()}"
        return arg if op.endswith("-") else ""

    return _INTERPOLATION.sub(replace, value)


def container_env(service: dict[str, Any], variables: dict[str, str] | None = None) -> dict[str, str]:
    """A service's environment as its container sees it (pass-through entries resolved or dropped)."""
    env: dict[str, str] = {}
    for name, value in (service.get("environment") or {}).items():
        if value is None:
            if variables and name in variables:
                env[name] = variables[name]
            continue
        env[name] = interpolate(str(value), variables)
    return env


def env_file(path: Path) -> dict[str, str]:
    """A Compose env file: KEY=VALUE lines, comments and blank lines skipped."""
    variables = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            variables[key.strip()] = value.strip()
    return variables


# ----- the specification ----------------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification(
    compose: dict[str, Any], validator: Draft7Validator
) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, "\n".join(errors)


def test_schema_check_rejects_what_compose_would_reject(
    compose: dict[str, Any], validator: Draft7Validator
) -> None:
    misspelt = copy.deepcopy(compose)
    misspelt["services"]["poller"]["depends_on"]["topics"]["condition"] = "service_completed"
    unknown_key = copy.deepcopy(compose)
    unknown_key["services"]["loader"]["healthchek"] = {"test": ["CMD", "true"]}
    for broken in (misspelt, unknown_key):
        assert list(validator.iter_errors(broken))


# ----- shape ----------------------------------------------------------------------------------------


def test_every_ml_connector_container_runs_the_one_image_built_from_the_dockerfile(
    compose: dict[str, Any],
) -> None:
    ours = product_services(compose)
    assert set(ours) == {"topics", *SERVICES, "syspro-sim", "mailchimp-sim"}
    assert {(s["image"], s["build"]["context"], s["build"]["dockerfile"]) for s in ours.values()} == {
        ("${MLC_IMAGE:-ml-connector:local}", ".", "Dockerfile")
    }
    assert (REPO / "Dockerfile").is_file()
    images = {name: svc.get("image", "") for name, svc in compose["services"].items() if name not in ours}
    assert images["kafka"].startswith("apache/kafka:")
    assert images["audit-db"].startswith("postgres:")
    assert {"prometheus", "grafana"} <= set(images)


def test_each_container_runs_the_documented_command(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["topics"]["command"] == ["topics", "create"]
    for service in SERVICES:
        assert services[service]["command"] == ["run", service]
    assert services["syspro-sim"]["command"] == ["sim", "syspro", "--host", "0.0.0.0", "--port", "8081"]
    assert services["mailchimp-sim"]["command"] == ["sim", "mailchimp", "--host", "0.0.0.0", "--port", "8082"]
    for simulator in ("syspro-sim", "mailchimp-sim"):
        assert services[simulator]["profiles"] == ["sim"]
    assert all("profiles" not in services[s] for s in ("kafka", "topics", *SERVICES))


def test_services_start_after_a_healthy_broker_and_the_topics_job(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert services["topics"]["restart"] == "no"
    for service in SERVICES:
        depends = services[service]["depends_on"]
        assert depends["kafka"] == {"condition": "service_healthy"}
        assert depends["topics"] == {"condition": "service_completed_successfully"}
    assert services["audit"]["depends_on"]["audit-db"] == {"condition": "service_healthy"}
    for dependency in ("kafka", "audit-db", "prometheus"):
        assert services[dependency]["healthcheck"]["test"]


def test_kafka_is_a_single_kraft_node_reachable_as_the_services_expect(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]["environment"]
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{kafka['KAFKA_NODE_ID']}@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert kafka["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 1  # transactions on one node
    for service in product_services(compose).values():
        bootstrap = container_env(service).get("KAFKA_BOOTSTRAP_SERVERS")
        assert bootstrap in (None, "kafka:9092")


def test_service_health_checks_probe_readiness_on_the_services_ports(compose: dict[str, Any]) -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    for service in SERVICES:
        spec = compose["services"][service]
        assert spec["healthcheck"]["test"] == ["CMD", "python", "/opt/ml-connector/healthcheck.py", "--ready"]
        assert int(container_env(spec)["MLC_HTTP_PORT"]) == DEFAULT_PORTS[service]
    assert "/opt/ml-connector/healthcheck.py" in dockerfile


# ----- settings -------------------------------------------------------------------------------------


def test_compose_sets_only_variables_the_code_reads(compose: dict[str, Any]) -> None:
    known = settings_env_names()
    for name, service in product_services(compose).items():
        ours = {v for v in service.get("environment") or {} if v.upper().startswith(("MLC_", "KAFKA_"))}
        assert ours <= known, f"{name}: {sorted(ours - known)} are read by no settings class or CLI option"


def test_required_variables_are_ones_the_code_reads() -> None:
    known = settings_env_names()
    for command in REQUIRED_ENV:
        for options in required_env(command):
            assert set(options) <= known, f"{command}: {options} is read by no settings class"


def test_each_container_gets_the_settings_it_cannot_default(compose: dict[str, Any]) -> None:
    for name, service in product_services(compose).items():
        command = command_of(service["command"])
        if command is None:
            continue
        missing = missing_required(command, service.get("environment") or {})
        assert not missing, f"{name} does not set {missing}"


def test_compose_values_pass_the_settings_validation(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variables in ({}, env_file(SIM_ENV)):
        for service in product_services(compose).values():
            command = command_of(service["command"])
            if command is not None:
                load_settings_from(container_env(service, variables), command_settings(command), monkeypatch)


# ----- mounts and secrets ---------------------------------------------------------------------------


def test_connections_file_is_mounted_where_the_services_look_for_it(compose: dict[str, Any]) -> None:
    for service in ("poller", "mapper", "loader"):
        spec = compose["services"][service]
        path = container_env(spec)["MLC_CONNECTIONS_FILE"]
        mounts = [v for v in spec["volumes"] if isinstance(v, dict) and v["target"] == path]
        assert len(mounts) == 1 and mounts[0]["read_only"] is True, service
        for variables in ({}, env_file(SIM_ENV)):
            source = REPO / interpolate(mounts[0]["source"], variables)
            assert load_connections(source).connections, source


def test_credential_store_and_master_key_are_secrets_where_the_services_look(compose: dict[str, Any]) -> None:
    declared = compose["secrets"]
    for service in ("poller", "loader"):
        spec = compose["services"][service]
        env = container_env(spec)
        for variable in ("MLC_CREDENTIALS_FILE", "MLC_MASTER_KEY_FILE"):
            secret = env[variable].removeprefix("/run/secrets/")
            assert env[variable] == f"/run/secrets/{secret}" and secret in spec["secrets"], (
                service,
                variable,
            )
            assert "file" in declared[secret]
        assert "MLC_MASTER_KEY" not in env, "the master key goes in a secret file, not the environment"
    for service in ("mapper", "audit", "topics"):
        assert "secrets" not in compose["services"][service], f"{service} needs no credential"


def test_audit_uses_postgresql_with_psycopg_and_requires_a_token(compose: dict[str, Any]) -> None:
    env = compose["services"]["audit"]["environment"]
    url = urlsplit(interpolate(env["MLC_AUDIT_DB_URL"]))
    assert url.scheme == "postgresql+psycopg"
    assert (url.hostname, url.port) == ("audit-db", 5432)
    database = compose["services"]["audit-db"]["environment"]
    assert (url.username, url.path.lstrip("/")) == (database["POSTGRES_USER"], database["POSTGRES_DB"])
    assert ":?" in env["MLC_AUDIT_API_TOKEN"], "compose must refuse to start the audit API without a token"


# ----- the simulator profile ------------------------------------------------------------------------


def test_sim_profile_points_the_pipeline_at_the_simulators(compose: dict[str, Any]) -> None:
    variables = env_file(SIM_ENV)
    assert variables["COMPOSE_PROFILES"] == "sim"
    source = REPO / variables["MLC_CONNECTIONS_SOURCE"]
    connection = load_connections(source).connections[0]
    odata = urlsplit(connection.syspro.odata_url)
    assert (odata.hostname, odata.port) == ("syspro-sim", 8081)
    assert odata.path == SysproSimConfig().odata_path
    loader_env = container_env(compose["services"]["loader"], variables)
    api = MailchimpSettings(api_base=loader_env["MLC_MAILCHIMP_API_BASE"])
    assert urlsplit(api.api_base.replace("{dc}", "us6")).netloc == "mailchimp-sim:8082"
    assert "MLC_MAILCHIMP_API_BASE" not in container_env(compose["services"]["loader"]), (
        "without the sim env file the loader must use the real Mailchimp (the code's default)"
    )


def _probe_path(healthcheck: dict[str, Any]) -> str:
    match = re.search(r"http://127\.0\.0\.1:\d+(/[^'\"]*)", " ".join(healthcheck["test"]))
    assert match, healthcheck
    return match[1]


def test_simulator_health_checks_ask_for_paths_the_simulators_serve(compose: dict[str, Any]) -> None:
    simulators = {
        "syspro-sim": SysproSimulator(SysproSimConfig()).app,
        "mailchimp-sim": MailchimpSimulator(MailchimpSimConfig()).app,
    }
    for name, app in simulators.items():
        path = _probe_path(compose["services"][name]["healthcheck"])
        with ServerThread(app) as server:
            response = httpx.get(server.url + path, timeout=10)
        assert response.status_code == 200, (name, path, response.status_code)


# ----- monitoring wiring ----------------------------------------------------------------------------


def test_prometheus_scrapes_every_service_on_its_metrics_port(compose: dict[str, Any]) -> None:
    config = load_yaml(PROMETHEUS)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for service in SERVICES:
        (sd,) = jobs[f"mlc-{service}"]["dns_sd_configs"]
        assert sd["names"] == [service] and sd["port"] == DEFAULT_PORTS[service]
        assert int(container_env(compose["services"][service])["MLC_HTTP_PORT"]) == sd["port"]


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> repository path of a service's bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str) and volume.startswith("./"):
            source, target = volume.split(":")[:2]
            out[target] = source
    return out


def test_prometheus_loads_its_config_and_the_alert_rules_from_the_repository(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    mounts = _mounts(prometheus)
    config_path = next(a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config.file="))
    assert REPO / mounts[config_path] == PROMETHEUS
    for rule_file in load_yaml(PROMETHEUS)["rule_files"]:
        assert (REPO / mounts[rule_file]).is_file(), rule_file


def test_grafana_gets_its_provisioning_and_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = _mounts(grafana)
    provisioning = REPO / mounts["/etc/grafana/provisioning"]
    provider = load_yaml(provisioning / "dashboards" / "ml-connector.yml")["providers"][0]
    dashboards = REPO / mounts[provider["options"]["path"]]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (dashboards / Path(home).name).is_file()
    assert home.startswith(provider["options"]["path"] + "/")
    assert (provisioning / "datasources" / "prometheus.yml").is_file()
