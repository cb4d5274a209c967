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
    #: Directory of the state store (a SQLite file holding member states and email ownership, rebuilt
    #: from the compacted topics at every start and removed on close). Default: a temporary directory.
    state_dir: str | None = None
    #: SQLite page cache of the state store, in MB (the rest of the file is left to the OS cache).
    state_cache_mb: int = Field(default=16, ge=1, le=4096)
