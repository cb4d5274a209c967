"""deploy/k8s, rendered with a small in-test kustomize (tests/deploy/kustomize.py) and checked against
the Kubernetes JSON schemas shipped by ``kubernetes-validate``, the settings the code reads, the
services' ports and probes, the memory target and the restricted Pod Security Standard.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from shared.connections import load_connections
from shared.settings import DEFAULT_PORTS
from tests.deploy.kustomize import KustomizeError, render
from tests.deploy.support import (
    REPO,
    SERVICES,
    command_of,
    command_settings,
    load_settings_from,
    missing_required,
    settings_env_names,
)

K8S = REPO / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "example"
#: The oldest Kubernetes release the manifests target, and the newest the schema package knows.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
MEMORY_TARGET_BYTES = 300_000_000
WORKLOAD_KINDS = {"Deployment", "Job"}


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render(BASE)


@pytest.fixture(scope="module")
def overlay() -> list[dict[str, Any]]:
    return render(OVERLAY)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (match,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return match


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in WORKLOAD_KINDS]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def quantity(value: str) -> float:
    """A Kubernetes memory quantity in bytes ("256Mi", "300M", "1Gi")."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9, "": 1}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]i?)?", str(value))
    assert match, value
    return float(match[1]) * units[match[2] or ""]


def pod_env(objects: list[dict[str, Any]], workload: dict[str, Any]) -> dict[str, str]:
    """The environment a container gets, with placeholders for values only the cluster knows."""
    spec = container(workload)
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        env.update(find(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "fieldRef" in item["valueFrom"]:
            env[item["name"]] = f"{workload['metadata']['name']}-7d9f8c6b5-x2k4q"
        else:
            env[item["name"]] = f"secret-{item['valueFrom']['secretKeyRef']['key']}"
    return env


def service_name(workload: dict[str, Any]) -> str:
    command = command_of(container(workload)["args"])
    assert command is not None, workload["metadata"]["name"]
    return command


# ----- schema ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_is_valid_for_kubernetes(
    version: str, base: list[Any], overlay: list[Any]
) -> None:
    for obj in [*base, *overlay]:
        kubernetes_validate.validate(obj, version, strict=True)


def test_schema_validation_rejects_a_misplaced_field(base: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(find(base, "Deployment", "mlc-loader"))
    broken["spec"]["template"]["spec"]["livenessProbe"] = container(broken).pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_renderer_refuses_kustomize_features_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "resources: []\nconfigMapGenerator:\n  - name: x\n    files: [a.yaml]\n", encoding="utf-8"
    )
    with pytest.raises(KustomizeError, match="configMapGenerator"):
        render(tmp_path)


# ----- the overlay ----------------------------------------------------------------------------------


def test_overlay_sets_namespace_image_replicas_and_kafka_security(overlay: list[dict[str, Any]]) -> None:
    namespaced = [o for o in overlay if o["kind"] != "Namespace"]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"ml-connector"}
    assert find(overlay, "Namespace", "ml-connector")
    assert {container(w)["image"] for w in workloads(overlay)} == {"registry.example.com/ml-connector:0.1.0"}
    assert find(overlay, "Deployment", "mlc-loader")["spec"]["replicas"] == 2
    env = find(overlay, "ConfigMap", "mlc-env")["data"]
    assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["MLC_CONNECTIONS_FILE"] == "/etc/ml-connector/connections.yaml"  # kept from the base


def test_no_secret_is_ever_part_of_the_manifests(base: list[Any], overlay: list[Any]) -> None:
    assert not [o for o in [*base, *overlay] if o["kind"] == "Secret"]
    for objects in (base, overlay):
        for config in (o for o in objects if o["kind"] == "ConfigMap"):
            assert not {k for k in config["data"] if re.search("PASSWORD|TOKEN|MASTER_KEY$|DB_URL", k)}


# ----- services -------------------------------------------------------------------------------------


def test_every_service_has_a_deployment_and_topics_a_job(base: list[dict[str, Any]]) -> None:
    deployments = {service_name(d) for d in base if d["kind"] == "Deployment"}
    assert deployments == set(SERVICES)
    job = find(base, "Job", "mlc-topics")
    assert container(job)["args"] == ["topics", "create"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_probes_and_metrics_are_on_each_services_own_port(base: list[dict[str, Any]]) -> None:
    for deployment in (d for d in base if d["kind"] == "Deployment"):
        service = service_name(deployment)
        spec = container(deployment)
        port = DEFAULT_PORTS[service]
        assert spec["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert spec["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert spec["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert pod_env(base, deployment)["MLC_HTTP_PORT"] == str(port)
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(port),
            "prometheus.io/path": "/metrics",
        }


def test_memory_is_sized_from_the_300_mb_target(base: list[dict[str, Any]]) -> None:
    for deployment in (d for d in base if d["kind"] == "Deployment"):
        resources = container(deployment)["resources"]
        request, limit = quantity(resources["requests"]["memory"]), quantity(resources["limits"]["memory"])
        assert request <= MEMORY_TARGET_BYTES < limit <= 2 * MEMORY_TARGET_BYTES, deployment["metadata"][
            "name"
        ]


def test_instance_id_is_each_pods_own_name(base: list[dict[str, Any]]) -> None:
    for deployment in (d for d in base if d["kind"] == "Deployment"):
        (item,) = [e for e in container(deployment)["env"] if e["name"] == "MLC_INSTANCE_ID"]
        assert item["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_poller_never_runs_twice_not_even_during_a_rollout(overlay: list[dict[str, Any]]) -> None:
    poller = find(overlay, "Deployment", "mlc-poller")
    assert poller["spec"]["replicas"] == 1
    assert poller["spec"]["strategy"] == {"type": "Recreate"}


def test_audit_api_service_reaches_the_audit_pods(overlay: list[dict[str, Any]]) -> None:
    service = find(overlay, "Service", "mlc-audit")
    audit = find(overlay, "Deployment", "mlc-audit")
    labels = audit["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http" and port["port"] == DEFAULT_PORTS["audit"]


# ----- settings -------------------------------------------------------------------------------------


def test_workloads_set_only_variables_the_code_reads(overlay: list[dict[str, Any]]) -> None:
    known = settings_env_names()
    for workload in workloads(overlay):
        names = {n for n in pod_env(overlay, workload) if n.startswith(("MLC_", "KAFKA_"))}
        assert names <= known, f"{workload['metadata']['name']}: {sorted(names - known)} are read by nothing"


def test_each_workload_gets_the_settings_it_cannot_default(overlay: list[dict[str, Any]]) -> None:
    for workload in workloads(overlay):
        missing = missing_required(service_name(workload), pod_env(overlay, workload))
        assert not missing, f"{workload['metadata']['name']} does not set {missing}"


@pytest.mark.parametrize("rendered", ["base", "overlay"])
def test_workload_values_pass_the_settings_validation(
    rendered: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = request.getfixturevalue(rendered)
    for workload in workloads(objects):
        command = service_name(workload)
        load_settings_from(pod_env(objects, workload), command_settings(command), monkeypatch)


def test_files_are_mounted_where_the_environment_points(overlay: list[dict[str, Any]]) -> None:
    for workload in workloads(overlay):
        env = pod_env(overlay, workload)
        pod = workload["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mounts = container(workload).get("volumeMounts", [])
        variables = {
            "poller": ("MLC_CONNECTIONS_FILE", "MLC_CREDENTIALS_FILE", "MLC_MASTER_KEY_FILE"),
            "mapper": ("MLC_CONNECTIONS_FILE",),
            "loader": ("MLC_CONNECTIONS_FILE", "MLC_CREDENTIALS_FILE", "MLC_MASTER_KEY_FILE"),
        }
        for variable in variables.get(service_name(workload), ()):
            path = Path(env[variable])
            (mount,) = [m for m in mounts if Path(m["mountPath"]) == path.parent]
            assert mount.get("readOnly") is True
            volume = volumes[mount["name"]]
            if "configMap" in volume:
                data = find(overlay, "ConfigMap", volume["configMap"]["name"])["data"]
                assert path.name in data, variable
            else:
                items = {i["path"] for i in volume["secret"]["items"]}
                assert path.name in items and volume["secret"]["secretName"] == "mlc-secrets", variable


def test_connections_configmap_is_the_example_file(base: list[dict[str, Any]], tmp_path: Path) -> None:
    example = REPO / "deploy" / "examples" / "connections.yaml"
    data = find(base, "ConfigMap", "mlc-connections")["data"]["connections.yaml"]
    assert data == example.read_text(encoding="utf-8")
    copy_path = tmp_path / "connections.yaml"
    copy_path.write_text(data, encoding="utf-8")
    assert load_connections(copy_path).connections


# ----- pod security ---------------------------------------------------------------------------------

ALLOWED_VOLUME_TYPES = {
    "configMap",
    "secret",
    "emptyDir",
    "projected",
    "downwardAPI",
    "persistentVolumeClaim",
}


def test_pods_meet_the_restricted_pod_security_standard(overlay: list[dict[str, Any]]) -> None:
    dockerfile_user = re.search(r"^USER (\d+)", (REPO / "Dockerfile").read_text(encoding="utf-8"), re.M)
    assert dockerfile_user
    for workload in workloads(overlay):
        pod = workload["spec"]["template"]["spec"]
        name = workload["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == int(dockerfile_user[1]), name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for spec in pod["containers"]:
            security = spec["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert security["readOnlyRootFilesystem"] is True, name
        for volume in pod.get("volumes", []):
            assert set(volume) - {"name"} <= ALLOWED_VOLUME_TYPES, (name, volume)
