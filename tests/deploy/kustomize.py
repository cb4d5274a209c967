"""A small kustomize, enough to render deploy/k8s without the kustomize binary.

It understands the subset the repository's kustomizations use, and refuses anything else, so a
kustomization can never gain a feature the tests silently skip:

- ``resources``: files (one or more YAML documents) and folders holding a kustomization;
- ``patches``: strategic-merge patches given by ``path``, each naming its target by kind and name;
- ``namespace``, ``images`` (``name`` -> ``newName`` / ``newTag``) and ``replicas``.

Strategic merge follows kubectl for what the manifests contain: maps merge key by key, lists of
objects with a ``name`` (containers, env, volumes, ports) merge item by item, other lists are replaced.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

__all__ = ["KustomizeError", "render"]

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "patches", "namespace", "images", "replicas"}
CLUSTER_SCOPED_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}

Resource = dict[str, Any]


class KustomizeError(ValueError):
    """The kustomization uses something this renderer does not implement, or is inconsistent."""


def _load_documents(path: Path) -> list[Resource]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise KustomizeError(f"{path}: every document must be a Kubernetes object")
    return docs


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in [*base, *patch])
    ):
        by_name = {item["name"]: item for item in base}
        merged_list = [_merge(by_name[i["name"]], i) if i["name"] in by_name else i for i in patch]
        patched = {i["name"] for i in patch}
        return [i for i in base if i["name"] not in patched] + merged_list
    return copy.deepcopy(patch)


def _apply_patch(resources: list[Resource], patch: Resource, source: Path) -> None:
    kind, name = patch.get("kind"), patch.get("metadata", {}).get("name")
    targets = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    if len(targets) != 1:
        raise KustomizeError(f"{source}: patch must match exactly one {kind}/{name}, found {len(targets)}")
    index = resources.index(targets[0])
    resources[index] = _merge(targets[0], patch)


def _containers(resource: Resource) -> list[dict[str, Any]]:
    if resource["kind"] not in POD_TEMPLATE_KINDS:
        return []
    pod = resource["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _split_image(image: str) -> tuple[str, str]:
    """``registry:5000/app:1.2`` -> (``registry:5000/app``, ``1.2``); a digest stays with the name."""
    if "@" in image:
        return image, ""
    colon = image.rfind(":")
    return (image[:colon], image[colon + 1 :]) if colon > image.rfind("/") else (image, "")


def _set_image(container: dict[str, Any], rule: dict[str, Any]) -> None:
    name, tag = _split_image(container["image"])
    if name != rule["name"]:
        return
    name, tag = rule.get("newName", name), rule.get("newTag", tag)
    container["image"] = f"{name}:{tag}" if tag else name


def render(directory: Path) -> list[Resource]:
    """The objects ``kustomize build directory`` would print, for the supported subset."""
    directory = Path(directory)
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unsupported = set(kustomization) - SUPPORTED_KEYS
    if unsupported:
        raise KustomizeError(f"{directory}: unsupported kustomization fields {sorted(unsupported)}")
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        resources.extend(render(path) if path.is_dir() else _load_documents(path))
    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise KustomizeError(f"{directory}: only file patches (`path:`) are supported, got {patch}")
        source = directory / patch["path"]
        for document in _load_documents(source):
            _apply_patch(resources, document, source)
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED_KINDS:
                resource["metadata"]["namespace"] = kustomization["namespace"]
    for rule in kustomization.get("images", []):
        for resource in resources:
            for container in _containers(resource):
                _set_image(container, rule)
    for rule in kustomization.get("replicas", []):
        matches = [
            r for r in resources if r["kind"] == "Deployment" and r["metadata"]["name"] == rule["name"]
        ]
        if not matches:
            raise KustomizeError(f"{directory}: replicas for unknown Deployment {rule['name']}")
        for resource in matches:
            resource["spec"]["replicas"] = rule["count"]
    keys = [(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]) for r in resources]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise KustomizeError(f"{directory}: duplicate objects {sorted(duplicates, key=str)}")
    return resources
