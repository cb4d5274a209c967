"""What an API handler receives (:class:`Call`) and returns (:class:`Reply`).

Handlers run synchronously under the simulator lock, after the gateway has authenticated the request,
taken a connection slot and served any injected latency; they never await.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from simulators.mailchimp import problems
from simulators.mailchimp.config import MailchimpSimConfig
from simulators.mailchimp.model import Audience, Store
from simulators.mailchimp.render import project
from simulators.mailchimp.validation import truthy
from simulators.mailchimp.writes import WriteContext

__all__ = ["Call", "Reply"]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int = 200
    doc: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Call:
    """One authenticated API request as the handlers see it."""

    store: Store
    config: MailchimpSimConfig
    dc: str
    params: dict[str, str]
    query: Mapping[str, str]
    body: Any
    now: str
    client_ip: str

    def audience(self) -> Audience:
        audience = self.store.lists.get(self.params["list_id"])
        if audience is None:
            raise problems.resource_not_found()
        return audience

    def write_context(self) -> WriteContext:
        skip = truthy(self.query.get("skip_merge_validation"))
        return WriteContext(self.store, self.config, self.now, self.client_ip, skip)

    def listed(self, name: str) -> list[str] | None:
        raw = self.query.get(name)
        return [part for part in raw.split(",") if part.strip()] if raw else None

    def page(self, default: int = 10) -> tuple[int, int]:
        count = _int_param(self.query, "count", default)
        offset = _int_param(self.query, "offset", 0)
        if count > self.config.count_cap:
            if self.config.count_over_cap == "reject":
                raise problems.schema_errors(
                    [{"field": "count", "message": f"count must be at most {self.config.count_cap}"}]
                )
            count = self.config.count_cap
        return count, offset

    def projected(self, doc: dict[str, Any]) -> Reply:
        return Reply(200, project(doc, self.listed("fields"), self.listed("exclude_fields")))


def _int_param(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise problems.schema_errors([{"field": name, "message": "Schema describes integer"}]) from None
    if value < 0:
        raise problems.schema_errors([{"field": name, "message": "Value must be zero or more"}])
    return value
