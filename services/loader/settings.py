"""The loader's own settings (``MLC_LOADER_*``); how to reach Mailchimp is ``MailchimpSettings``."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LoaderSettings"]


class LoaderSettings(BaseSettings):
    """Batching, retries and the shared connection limit of the loader (``MLC_LOADER_*``)."""

    model_config = SettingsConfigDict(env_prefix="MLC_LOADER_", extra="ignore")

    #: Commands consumed per batch. Large enough that the bulk path can keep every connection slot
    #: busy with 500-member calls (9 slots x 500 = 4,500 members per round).
    max_batch: int = Field(default=5000, ge=1, le=50_000)
    #: Consumed batches processed at once. 2 keeps every connection slot busy across batch boundaries
    #: (the next batch starts while the previous one finishes and commits); 1 is strictly one by one.
    pipeline_depth: int = Field(default=2, ge=1, le=4)
    #: More consumed batches are started, up to this many in flight, while a connection slot is idle
    #: (small batches, e.g. while the upstream stages are still catching up, would otherwise leave
    #: slots unused). The records in flight never exceed ``pipeline_depth`` x ``max_batch``.
    max_pipeline_depth: int = Field(default=6, ge=1, le=16)
    #: Largest fetch per partition, so one poll can actually return ``max_batch`` commands.
    max_partition_fetch_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)

    #: Use batch subscribe when a consumed batch holds at least this many plain upserts for one list.
    bulk_min_members: int = Field(default=50, ge=1)
    #: Members per batch-subscribe call (Mailchimp accepts at most 500).
    bulk_max_members: int = Field(default=500, ge=1, le=500)
    #: Send ``tags`` inside batch-subscribe items and PUT bodies of new members. Whatever Mailchimp
    #: does with them, the returned member is checked and missing tags are posted separately.
    inline_tags: bool = True

    #: Attempts per request (the first included) for 429, throttling 403, 5xx, timeouts, connection errors.
    max_attempts: int = Field(default=8, ge=1, le=50)
    #: No new attempt starts once a request has been retried for this long.
    retry_budget_seconds: float = Field(default=120.0, gt=0)
    backoff_initial_seconds: float = Field(default=0.5, gt=0)
    backoff_max_seconds: float = Field(default=30.0, gt=0)
    connect_timeout_seconds: float = Field(default=10.0, gt=0)

    #: How often the consumer group's size is re-read (it is also re-read on every rebalance).
    group_refresh_seconds: float = Field(default=5.0, gt=0)
    #: A smaller group size is believed only after it has been seen for this long, so a group caught
    #: mid-rebalance never makes a worker take more than its share.
    group_shrink_grace_seconds: float = Field(default=15.0, ge=0)
    #: After a throttle the local limit halves; it grows back by one slot per this many seconds
    #: without a throttle.
    limit_recovery_seconds: float = Field(default=2.0, gt=0)

    #: When every retry of a command failed and Mailchimp answered nothing else meanwhile (an outage),
    #: the whole batch is retried later instead of failing its commands.
    outage_retry: bool = True

    @model_validator(mode="after")
    def _backoff_order(self) -> LoaderSettings:
        if self.backoff_max_seconds < self.backoff_initial_seconds:
            raise ValueError("backoff_max_seconds must be >= backoff_initial_seconds")
        return self
