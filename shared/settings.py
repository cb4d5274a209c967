"""Infrastructure settings, one pydantic-settings object per concern, read from the environment.

Business configuration (connections, audiences, mapping) lives in the connections file instead
(``shared.connections``). ``load`` turns a validation error into a ``SettingsError`` that names the
environment variable at fault, so a bad deployment fails at start-up with a readable message.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "AuditSettings",
    "CredentialSettings",
    "KafkaSettings",
    "MailchimpSettings",
    "ServiceSettings",
    "SettingsError",
    "load",
]

S = TypeVar("S", bound=BaseSettings)


class SettingsError(RuntimeError):
    """Invalid settings; the message names every bad variable."""


class KafkaSettings(BaseSettings):
    """How to reach the Kafka cluster (``KAFKA_*``)."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True
    #: Prefix for every topic and consumer group name: isolates several deployments (or test runs)
    #: on one cluster. Empty in production unless the cluster is shared.
    namespace: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$")
    request_timeout_ms: int = Field(default=30_000, ge=1000)
    #: Replication factor of the topics ``ml-connector topics create`` makes (3 on a production cluster).
    replication_factor: int = Field(default=1, ge=1)
    #: Kafka transaction timeout: after a crash, read_committed consumers wait at most this long for
    #: the dead producer's open transaction to be aborted.
    transaction_timeout_ms: int = Field(default=15_000, ge=1000)

    @field_validator("sasl_mechanism", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value

    def topic(self, name: str) -> str:
        return f"{self.namespace}{name}"

    def group(self, service: str) -> str:
        """The stable consumer group id of a service (documented so Kafka's own tools work)."""
        return f"{self.namespace}mlc-{service}"

    def check_security(self) -> None:
        """Cross-field rules pydantic cannot express per field."""
        if self.security_protocol.startswith("SASL_") and not (
            self.sasl_mechanism and self.sasl_username and self.sasl_password
        ):
            raise SettingsError(
                f"KAFKA_SECURITY_PROTOCOL is {self.security_protocol}: KAFKA_SASL_MECHANISM, "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required"
            )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise SettingsError(f"KAFKA_{name.upper()}: file {path} does not exist")


class ServiceSettings(BaseSettings):
    """Process-level settings shared by every service (``MLC_*``)."""

    model_config = SettingsConfigDict(env_prefix="MLC_", extra="ignore")

    http_host: str = "0.0.0.0"
    #: Port of /metrics, /healthz and /readyz (0 = each service's default, see ``DEFAULT_PORTS``).
    http_port: int = Field(default=0, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    #: Stable identity of this process; part of transactional ids, so a restarted instance fences
    #: its previous incarnation. Must differ between processes running side by side.
    instance_id: str = Field(default_factory=socket.gethostname, pattern=r"^[A-Za-z0-9_.-]+$")
    connections_file: Path = Path("connections.yaml")
    #: Allocations between young-generation garbage collections once the service has started
    #: (CPython's default is 700; 0 leaves the collector as CPython configures it; unset: the
    #: service's own default, see ``shared.runtime.GC_YOUNG_THRESHOLDS`` and ADR 4).
    gc_young_threshold: int | None = Field(default=None, ge=0)


DEFAULT_PORTS = {"poller": 9101, "mapper": 9102, "loader": 9103, "audit": 9104}


class CredentialSettings(BaseSettings):
    """Where the encrypted credential store is and how to open it (``MLC_*``)."""

    model_config = SettingsConfigDict(env_prefix="MLC_", extra="ignore")

    credentials_file: Path = Path("credentials.json")
    #: One or more Fernet keys, comma-separated; the first encrypts, all decrypt (key rotation).
    master_key: SecretStr | None = None
    master_key_file: Path | None = None


class MailchimpSettings(BaseSettings):
    """How to reach Mailchimp (``MLC_MAILCHIMP_*``)."""

    model_config = SettingsConfigDict(env_prefix="MLC_MAILCHIMP_", extra="ignore")

    #: ``{dc}`` is replaced by the credential's data center.
    api_base: str = "https://{dc}.api.mailchimp.com/3.0"
    oauth_metadata_url: str = "https://login.mailchimp.com/oauth2/metadata"
    #: Simultaneous requests per API key across every loader worker (Mailchimp allows 10).
    max_in_flight: int = Field(default=9, ge=1, le=10)
    timeout_seconds: float = Field(default=120.0, gt=0)

    @field_validator("api_base")
    @classmethod
    def _has_dc(cls, value: str) -> str:
        if "{dc}" not in value:
            raise ValueError("must contain the {dc} placeholder")
        return value.rstrip("/")


class AuditSettings(BaseSettings):
    """The audit store and its API (``MLC_AUDIT_*``)."""

    model_config = SettingsConfigDict(env_prefix="MLC_AUDIT_", extra="ignore")

    db_url: str = "sqlite:///mlc-audit.db"
    api_token: SecretStr | None = None


def _env_name(cls: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return (prefix + "_".join(str(p) for p in loc)).upper() if loc else cls.__name__


def load(cls: type[S]) -> S:
    """Build a settings object from the environment, or fail naming the bad variables."""
    try:
        settings = cls()
    except ValidationError as exc:
        problems = "; ".join(f"{_env_name(cls, err['loc'])}: {err['msg']}" for err in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from None
    if isinstance(settings, KafkaSettings):
        settings.check_security()
    return settings
