"""Settings of the mapper process (``MLC_MAPPER_*``); what to map is in the connections file."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["MapperSettings"]


class MapperSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLC_MAPPER_", extra="ignore")

    #: Records per consumed batch (and per Kafka transaction).
    max_batch: int = Field(default=1000, ge=1, le=10_000)
    #: Follow the email-ownership topic after the initial load. Needed when several mapper instances run
    #: side by side (each learns the others' claims); harmless with one.
    follow_ownership: bool = True
