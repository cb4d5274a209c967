"""The audit service's settings: the shared ``AuditSettings`` (``MLC_AUDIT_DB_URL``,
``MLC_AUDIT_API_TOKEN``) plus what only this service reads, all under ``MLC_AUDIT_``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import AuditSettings

__all__ = ["AuditServiceSettings"]


class AuditServiceSettings(AuditSettings):
    model_config = SettingsConfigDict(env_prefix="MLC_AUDIT_", extra="ignore")

    #: Serve the API without a token. Only for a trusted network: every customer's data is readable.
    api_insecure: bool = False
    #: Records per SQL transaction (and per Kafka fetch).
    batch_size: int = Field(default=2000, ge=1, le=20_000)
    #: How often the ``mlc_audit_sync_state_customers`` gauge is recomputed.
    state_metrics_interval_seconds: float = Field(default=30.0, gt=0)
