"""What the deployment tests compare the deployment files against: the code itself.

- ``settings_env_names``: every environment variable the code reads, taken from the pydantic-settings
  classes (``env_prefix`` + field names) and from the CLI's ``envvar`` options.
- ``command_settings`` / ``REQUIRED_ENV``: which settings each container command loads (read from its
  code), and which variables a container must set because the defaults only suit a developer's machine.
- ``exported_metric_names``: every series name the services expose on /metrics, read from
  prometheus_client's registry after importing each module that defines metrics.
- PromQL helpers on top of ``promql_parser`` (a real PromQL parser): metric names and output labels.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import promql_parser
import typer.main
import yaml
from prometheus_client import REGISTRY
from pydantic_settings import BaseSettings

from shared import settings as shared_settings

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("poller", "mapper", "loader", "audit")
#: Series Prometheus makes itself for every scrape target.
PROMETHEUS_BUILTIN_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
#: Grafana's built-in variables, replaced by plausible values before a dashboard query is parsed.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


# ----- settings -------------------------------------------------------------------------------------


def _service_settings_module(service: str) -> Any | None:
    if not (REPO / "services" / service / "settings.py").is_file():
        return None
    return importlib.import_module(f"services.{service}.settings")


def settings_classes() -> dict[str, type[BaseSettings]]:
    """Every pydantic-settings class of shared/settings.py and services/*/settings.py, by name."""
    modules = [shared_settings, *(m for s in SERVICES if (m := _service_settings_module(s)) is not None)]
    found: dict[str, type[BaseSettings]] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseSettings) and value is not BaseSettings:
                found[value.__name__] = value
    return found


def env_names(cls: type[BaseSettings]) -> set[str]:
    """The variables one settings class reads (case-insensitive, so compared upper-case)."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias
        names.add((alias if isinstance(alias, str) else prefix + field_name).upper())
    return names


def cli_env_names() -> set[str]:
    """Variables the ``ml-connector`` CLI reads through ``envvar=`` options (the simulators' secrets)."""
    from services.cli import app

    names: set[str] = set()

    def walk(command: Any) -> None:
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            names.update([envvar] if isinstance(envvar, str) else list(envvar or []))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    return {n.upper() for n in names}


def settings_env_names() -> set[str]:
    return set().union(*(env_names(c) for c in settings_classes().values())) | cli_env_names()


_LOADS = re.compile(r"\bload\((\w+)\)")


def command_settings(command: str) -> tuple[str, ...]:
    """The settings classes a container command loads: ``topics create`` reads KafkaSettings; a service
    reads ServiceSettings (the CLI's ``run``) plus every ``load(X)`` in its ``create_service`` module."""
    if command == "topics":
        return ("KafkaSettings",)
    source = (REPO / "services" / command / "app.py").read_text(encoding="utf-8")
    return ("ServiceSettings", *sorted(set(_LOADS.findall(source))))


_KAFKA = ("KAFKA_BOOTSTRAP_SERVERS",)
_CONNECTIONS = ("MLC_CONNECTIONS_FILE",)
_STORE = ("MLC_CREDENTIALS_FILE",)
_MASTER_KEY = ("MLC_MASTER_KEY", "MLC_MASTER_KEY_FILE")
#: Variables a container must set (any one of each tuple): their defaults name localhost, the working
#: directory or a SQLite file, which are wrong inside a container.
REQUIRED_ENV: dict[str, tuple[tuple[str, ...], ...]] = {
    "topics": (_KAFKA,),
    "poller": (_KAFKA, _CONNECTIONS, _STORE, _MASTER_KEY),
    "mapper": (_KAFKA, _CONNECTIONS),
    "loader": (_KAFKA, _CONNECTIONS, _STORE, _MASTER_KEY),
    "audit": (_KAFKA, ("MLC_AUDIT_DB_URL",), ("MLC_AUDIT_API_TOKEN", "MLC_AUDIT_API_INSECURE")),
}


def command_of(args: Iterable[str]) -> str | None:
    """``["run", "loader"]`` -> ``loader``; ``["topics", "create"]`` -> ``topics``; else None."""
    args = list(args)
    if args[:1] == ["run"] and len(args) > 1:
        return args[1]
    if args[:2] == ["topics", "create"]:
        return "topics"
    return None


def required_env(command: str) -> list[tuple[str, ...]]:
    """REQUIRED_ENV for the command, plus every settings field without a default it loads."""
    classes = settings_classes()
    required = list(REQUIRED_ENV[command])
    for class_name in command_settings(command):
        cls = classes[class_name]
        prefix = str(cls.model_config.get("env_prefix", ""))
        required.extend((f"{prefix}{n}".upper(),) for n, f in cls.model_fields.items() if f.is_required())
    return required


def missing_required(command: str, env: Mapping[str, object]) -> list[str]:
    return [" or ".join(options) for options in required_env(command) if not any(o in env for o in options)]


def load_settings_from(env: Mapping[str, str], class_names: Iterable[str], monkeypatch: Any) -> None:
    """Build each settings class from exactly ``env`` (validation errors name the variable)."""
    for name in list(os.environ):
        if name.upper().startswith(("MLC_", "KAFKA_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    classes = settings_classes()
    for class_name in class_names:
        shared_settings.load(classes[class_name])


# ----- metrics --------------------------------------------------------------------------------------

_DEFINES_METRICS = re.compile(r"^\s*(from prometheus_client import|import prometheus_client)", re.MULTILINE)


def metric_modules() -> list[str]:
    """Modules of shared/ and services/ that import prometheus_client (where metrics are defined)."""
    modules = []
    for root in ("shared", "services"):
        for path in sorted((REPO / root).rglob("*.py")):
            if "migrations" in path.parts or not _DEFINES_METRICS.search(path.read_text(encoding="utf-8")):
                continue
            modules.append(".".join(path.relative_to(REPO).with_suffix("").parts))
    return modules


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def exported_metric_names() -> set[str]:
    """Every series name /metrics can show: the registry's collectors with their type's suffixes."""
    for module in metric_modules():
        importlib.import_module(module)
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


# ----- PromQL ---------------------------------------------------------------------------------------


def parse_promql(expr: str) -> Any:
    """Parse with Grafana's variables replaced; raises ValueError with the parser's reason."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return promql_parser.parse(expr)


def promql_metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            names.update(m.value for m in node.matchers.matchers if m.name == "__name__")

    promql_parser.walk(parse_promql(expr), visit)
    return names


_LABEL_PRESERVING_FUNCTIONS = {
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "abs",
    "ceil",
    "floor",
    "round",
    "clamp_min",
    "clamp_max",
    "max_over_time",
    "min_over_time",
    "avg_over_time",
    "sum_over_time",
    "last_over_time",
}


def output_labels(node: Any) -> frozenset[str] | None:
    """The labels an expression's result carries, when the expression fixes them; None when they depend
    on the scraped series (a bare selector passes on whatever labels the series have)."""
    if isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr):
        return output_labels(node.expr)
    if isinstance(node, promql_parser.NumberLiteral | promql_parser.StringLiteral):
        return frozenset()
    if isinstance(node, promql_parser.AggregateExpr):
        modifier = node.modifier
        if modifier is None:
            return frozenset()
        return frozenset(modifier.labels) if modifier.type == promql_parser.AggModifierType.By else None
    if isinstance(node, promql_parser.Call):
        name = node.func.name
        if name in ("time", "vector", "scalar"):
            return frozenset()
        if name == "absent":
            selector = node.args[0]
            return frozenset(
                m.name for m in selector.matchers.matchers if m.op == promql_parser.MatchOp.Equal
            )
        if name == "histogram_quantile":
            inner = output_labels(node.args[1])
            return None if inner is None else inner - {"le"}
        if name in _LABEL_PRESERVING_FUNCTIONS:
            return output_labels(node.args[0])
        return None
    if isinstance(node, promql_parser.MatrixSelector | promql_parser.VectorSelector):
        return None
    if isinstance(node, promql_parser.BinaryExpr):
        left, right = output_labels(node.lhs), output_labels(node.rhs)
        if str(node.op) == "or":
            return None if left is None or right is None else left | right
        if left == frozenset() and isinstance(node.lhs, promql_parser.NumberLiteral | promql_parser.Call):
            return right
        group_left = getattr(node.modifier, "group_labels", None) or ()
        extra = frozenset(group_left)
        return None if left is None else left | extra
    return None


_TEMPLATE_LABEL = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)")


def template_labels(text: str) -> set[str]:
    """Labels an alert annotation refers to (``{{ $labels.connection }}``)."""
    return set(_TEMPLATE_LABEL.findall(text))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))
