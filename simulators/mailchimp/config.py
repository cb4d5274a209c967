"""Settings of the Mailchimp simulator.

Behaviour the reference marks as disputed or unknown is a switch here, with the reference's suggested
default, so a test can pin the variant it cares about. Faults (latency, errors, throttling) can also be
changed while the simulator runs; they live in :class:`MailchimpFaults`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, field_validator

__all__ = [
    "DEMO_API_KEY",
    "ENDPOINT_KINDS",
    "FakeEmailPatterns",
    "FaultName",
    "MailchimpFaults",
    "MailchimpSimConfig",
    "QueuedFault",
]

#: A well-formed key accepted by a default configuration (demo and quick starts only).
DEMO_API_KEY = "0123456789abcdef0123456789abcdef-us6"

_KEY_RE = re.compile(r"^[0-9a-f]{32}-([a-z]+[0-9]+)$")
_DC_RE = re.compile(r"^[a-z]+[0-9]+$")

#: Endpoint kinds used for latency, statistics and queued faults. A kind without its own latency falls
#: back along ``LATENCY_FALLBACK`` and then to ``default``.
ENDPOINT_KINDS = (
    "ping",
    "lists",
    "merge_fields",
    "member_get",
    "member_list",
    "member_put",
    "member_post",
    "member_patch",
    "member_delete",
    "member_delete_permanent",
    "tags",
    "batch_members",
    "default",
)
LATENCY_FALLBACK = {
    "member_list": "member_get",
    "member_post": "member_put",
    "member_delete_permanent": "member_delete",
    "merge_fields": "lists",
}

#: What a fault does to one request: a throttle surface ("429" problem+json, "403" bare, "503" HTML), an
#: injected "500", or a "timeout" (hold the connection ``timeout_seconds``, then 504 or drop).
FaultName = Literal["429", "403", "503", "500", "timeout"]


def dc_of_key(key: str) -> str | None:
    """The data center a key is bound to (its ``-<dc>`` suffix), or None when the key is malformed."""
    match = _KEY_RE.match(key)
    return match.group(1) if match else None


class FakeEmailPatterns(BaseModel):
    """Addresses Mailchimp refuses as "looks fake or invalid".

    The real rules are not published; tests use ``example.*`` domains, so those are deliberately absent.
    """

    model_config = ConfigDict(extra="forbid")

    local_parts: list[str] = Field(default_factory=lambda: ["test", "fake", "asdf"])
    domains: list[str] = Field(default_factory=lambda: ["mailinator.com", "example.invalid"])
    addresses: list[str] = Field(default_factory=list)

    _sets: tuple[frozenset[str], frozenset[str], tuple[str, ...]] = PrivateAttr()

    def model_post_init(self, context: object, /) -> None:
        self._sets = (
            frozenset(a.lower() for a in self.addresses),
            frozenset(p.lower() for p in self.local_parts),
            tuple(d.lower() for d in self.domains),
        )

    def matches(self, email: str) -> bool:
        """True when ``email`` (already syntactically valid) is one of the refused patterns."""
        addresses, local_parts, domains = self._sets
        lowered = email.lower()
        local, _, domain = lowered.rpartition("@")
        if lowered in addresses or local in local_parts:
            return True
        return any(domain == d or domain.endswith("." + d) for d in domains)


class QueuedFault(BaseModel):
    """One fault served to the next matching request (``kind`` None matches any endpoint)."""

    model_config = ConfigDict(extra="forbid")

    fault: FaultName
    kind: str | None = None


def _check_latency_kinds(value: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(value) - set(ENDPOINT_KINDS))
    if unknown:
        raise ValueError(f"unknown endpoint kinds {unknown}; known: {list(ENDPOINT_KINDS)}")
    if any(v < 0 for v in value.values()):
        raise ValueError("latency must not be negative")
    return value


LatencyMap = Annotated[dict[str, float], AfterValidator(_check_latency_kinds)]


class MailchimpFaults(BaseModel):
    """Faults and limits that may change while the simulator runs (``set_faults`` / ``/_admin/faults``).

    Every fault is served after the request has taken one of its key's connection slots, like a slow real
    server, so injected latency and timeouts count against the 10-connection limit.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    max_connections: int = Field(10, ge=1)
    throttle_mode: Literal["429", "403", "503"] = "429"
    retry_after_seconds: int | None = Field(None, ge=0)
    latency_ms: LatencyMap = Field(default_factory=dict)
    batch_latency_per_member_ms: float = Field(0.0, ge=0)
    error_rate: float = Field(0.0, ge=0, le=1)
    timeout_rate: float = Field(0.0, ge=0, le=1)
    timeout_seconds: float = Field(120.0, ge=0)
    timeout_mode: Literal["504", "drop"] = "504"
    queued: list[QueuedFault] = Field(default_factory=list)

    def latency_for(self, kind: str, members: int = 0) -> float:
        """Seconds to hold a request of ``kind`` (``members`` adds the per-member share of a batch)."""
        ms = self.latency_ms.get(kind)
        if ms is None and kind in LATENCY_FALLBACK:
            ms = self.latency_ms.get(LATENCY_FALLBACK[kind])
        if ms is None:
            ms = self.latency_ms.get("default", 0.0)
        return (ms + self.batch_latency_per_member_ms * members) / 1000.0


class MailchimpSimConfig(BaseModel):
    """How the simulated Mailchimp account looks and which disputed behaviours it follows."""

    # Validation errors would otherwise echo the offending keys.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    # Routing and credentials. Requests without a dc prefix or dc Host go to the first data center.
    data_centers: list[str] = Field(default_factory=lambda: ["us6"], min_length=1)
    api_keys: list[str] = Field(default_factory=lambda: [DEMO_API_KEY], repr=False)
    disabled_api_keys: list[str] = Field(default_factory=list, repr=False)
    oauth_tokens: dict[str, str] = Field(default_factory=dict, repr=False)
    oauth_client_id: str | None = None
    oauth_client_secret: str | None = Field(None, repr=False)
    account_name: str = "ml-connector simulated account"
    login_email: str = "owner@example.org"

    # Faults and limits (initial values of MailchimpFaults).
    max_connections: int = Field(10, ge=1)
    throttle_mode: Literal["429", "403", "503"] = "429"
    retry_after_seconds: int | None = Field(None, ge=0)
    latency_ms: LatencyMap = Field(default_factory=dict)
    batch_latency_per_member_ms: float = Field(0.0, ge=0)
    error_rate: float = Field(0.0, ge=0, le=1)
    timeout_rate: float = Field(0.0, ge=0, le=1)
    timeout_seconds: float = Field(120.0, ge=0)
    timeout_mode: Literal["504", "drop"] = "504"

    # Disputed behaviours (reference §8), defaults as suggested there.
    resubscribe_unsubscribed: Literal["by_origin", "refuse", "allow"] = "by_origin"
    status_on_create: Literal["status_if_new", "status"] = "status_if_new"
    forgotten_mode: Literal["forgotten", "compliance"] = "forgotten"
    member_exists_on_deleted: bool = False
    undeletable_statuses: list[str] = Field(default_factory=lambda: ["cleaned"])
    count_cap: int = Field(1000, ge=1)
    count_over_cap: Literal["clamp", "reject"] = "clamp"
    batch_max: int = Field(500, ge=1)
    fake_email_patterns: FakeEmailPatterns = Field(default_factory=FakeEmailPatterns)

    seed: int | None = None
    request_log_size: int = Field(10_000, ge=0)
    # Once the account holds this many members, writes call gc.freeze() so the process's full garbage
    # collections stop rescanning the stored audience (100k members otherwise cost ~100 ms pauses in
    # the middle of batch calls). Process-wide; None turns it off.
    gc_freeze_threshold: int | None = Field(20_000, ge=1)

    @field_validator("data_centers")
    @classmethod
    def _dc_names(cls, value: list[str]) -> list[str]:
        bad = [dc for dc in value if not _DC_RE.match(dc)]
        if bad:
            raise ValueError(f"data center names look like 'us6': {bad}")
        return value

    @field_validator("api_keys", "disabled_api_keys")
    @classmethod
    def _key_shape(cls, value: list[str]) -> list[str]:
        # Report the position, never the key itself.
        for index, key in enumerate(value):
            if dc_of_key(key) is None:
                raise ValueError(f"key #{index} is not '<32 hex>-<dc>'")
        return value

    @property
    def default_dc(self) -> str:
        return self.data_centers[0]

    def initial_faults(self) -> MailchimpFaults:
        names = set(MailchimpFaults.model_fields) - {"queued"}
        return MailchimpFaults.model_validate({name: getattr(self, name) for name in names})
