"""The poller's own process settings (``MLC_POLLER_*``); what to poll is in the connections file."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PollerSettings"]


class PollerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLC_POLLER_", extra="ignore")

    #: Poll every connection as soon as the service is ready (else first after one interval).
    run_on_start: bool = True
    #: Backoff between retries of a failed SYSPRO request: exponential from this, with jitter.
    retry_initial_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=30.0, gt=0)
    #: Comma-separated connection ids this process polls (empty: all). Each connection must be polled
    #: by exactly one process, so split connections between pollers with this when running several.
    only_connections: str = ""
    #: Log on to e.net at start-up to check the operator, for connections that configure ``enet_url``.
    enet_check: bool = True

    def selected(self, connection_ids: list[str]) -> list[str]:
        if not self.only_connections.strip():
            return connection_ids
        wanted = {c.strip() for c in self.only_connections.split(",") if c.strip()}
        unknown = wanted - set(connection_ids)
        if unknown:
            raise ValueError(
                f"MLC_POLLER_ONLY_CONNECTIONS names unknown connection(s): {', '.join(sorted(unknown))}"
            )
        return [c for c in connection_ids if c in wanted]
