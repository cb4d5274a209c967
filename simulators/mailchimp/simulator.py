"""The Mailchimp simulator: one object owning the state, serving it as an ASGI app and exposing the
test controls as Python methods.

Serve ``.app`` with :class:`simulators._server.ServerThread` (tests, benchmarks) or ``serve_forever``
(``ml-connector sim mailchimp``). The server runs in another thread than the test, so every read or
write of the state takes ``lock``; handlers never await while holding it.
"""

from __future__ import annotations

import gc
import random
import re
import threading
from collections.abc import Iterable
from typing import Any

from starlette.applications import Starlette

from simulators.mailchimp.admin import admin_routes
from simulators.mailchimp.config import FaultName, MailchimpFaults, MailchimpSimConfig, QueuedFault
from simulators.mailchimp.gateway import ApiGateway, install_log_filter
from simulators.mailchimp.model import (
    Audience,
    Member,
    MergeField,
    Store,
    address_from_json,
    default_merge_fields,
    now_iso,
)
from simulators.mailchimp.oauth import oauth_routes
from simulators.mailchimp.render import render_member
from simulators.mailchimp.stats import SimStats, StatsCollector
from simulators.mailchimp.writes import member_key

__all__ = ["MailchimpSimulator"]

_API_PATH = re.compile(r"^(?:/([a-z]+[0-9]+))?/3\.0(/.*)?$")


class MailchimpSimulator:
    """A simulated Mailchimp account (Marketing API v3.0) with test controls.

    API calls go to ``/3.0/...`` (the first configured data center), ``/<dc>/3.0/...`` or any path with
    a ``<dc>.api.mailchimp.com`` Host; ``/_admin`` and ``/oauth2`` are the other entry points.
    """

    def __init__(self, config: MailchimpSimConfig | None = None) -> None:
        self.config = config or MailchimpSimConfig()
        self.lock = threading.RLock()
        self.store = Store(self.config.seed)
        self.faults: MailchimpFaults = self.config.initial_faults()
        self.stats_collector = StatsCollector(self.config.request_log_size)
        self.oauth_tokens: dict[str, str] = dict(self.config.oauth_tokens)
        self._fault_rng = random.Random(self.config.seed)
        self._oauth_codes: set[str] = set()
        self._gateway = ApiGateway(self)
        self._other = Starlette(routes=[*admin_routes(self), *oauth_routes(self)])
        install_log_filter()

    # ASGI -----------------------------------------------------------------------------------------

    @property
    def app(self) -> MailchimpSimulator:
        """The ASGI application (the simulator itself)."""
        return self

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            found = _API_PATH.match(scope["path"])
            if found is not None:
                await self._gateway.handle(scope, receive, send, found.group(1), found.group(2) or "/")
                return
        await self._other(scope, receive, send)

    # Faults and counters --------------------------------------------------------------------------

    def set_faults(self, **changes: Any) -> MailchimpFaults:
        """Change faults and limits at run time (fields of :class:`MailchimpFaults`); returns the result."""
        with self.lock:
            merged = {**self.faults.model_dump(), **changes}
            self.faults = MailchimpFaults.model_validate(merged)
            return self.faults

    def queue_faults(self, *faults: FaultName, kind: str | None = None) -> None:
        """Serve ``faults`` to the next requests (of ``kind``, if given), one each, in order."""
        with self.lock:
            self.faults.queued.extend(QueuedFault(fault=f, kind=kind) for f in faults)

    def draw_fault(self, kind: str) -> FaultName | None:
        """The fault the current request of ``kind`` gets: queued ones first, then the random rates."""
        with self.lock:
            queued = self.faults.queued
            for index, item in enumerate(queued):
                if item.kind is None or item.kind == kind:
                    del queued[index]
                    return item.fault
            if self.faults.timeout_rate and self._fault_rng.random() < self.faults.timeout_rate:
                return "timeout"
            if self.faults.error_rate and self._fault_rng.random() < self.faults.error_rate:
                return "500"
        return None

    def after_write(self) -> None:
        """Called after each successful member write; see ``MailchimpSimConfig.gc_freeze_threshold``."""
        threshold = self.config.gc_freeze_threshold
        if threshold is None:
            return
        with self.lock:
            total = sum(len(audience.members) for audience in self.store.lists.values())
        if total >= threshold:
            gc.freeze()

    @property
    def stats(self) -> SimStats:
        with self.lock:
            return self.stats_collector.snapshot()

    def reset_stats(self) -> None:
        with self.lock:
            self.stats_collector.reset()

    def request_log(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The most recent API calls (method, path, kind, status, credential label, ms), oldest first."""
        with self.lock:
            entries = list(self.stats_collector.log)
        return entries[-limit:] if limit else entries

    # OAuth ------------------------------------------------------------------------------------------

    def issue_oauth_code(self) -> str:
        with self.lock:
            code = self.store.new_hex(32)
            self._oauth_codes.add(code)
            return code

    def exchange_oauth_code(self, code: str) -> str | None:
        """A new access token for a code issued by ``/oauth2/authorize`` (each code works once)."""
        with self.lock:
            if code not in self._oauth_codes:
                return None
            self._oauth_codes.discard(code)
            token = self.store.new_hex(32)
            self.oauth_tokens[token] = self.config.default_dc
            return token

    # Audiences ------------------------------------------------------------------------------------

    def create_list(
        self,
        list_id: str | None = None,
        name: str = "Simulated audience",
        merge_fields: Iterable[dict[str, Any]] | None = None,
        required_merge_fields: Iterable[str] = (),
    ) -> str:
        """Create an audience and return its id.

        ``merge_fields`` replaces the defaults (FNAME, LNAME, ADDRESS, PHONE) with dicts of ``tag, name,
        type, required, options, ...``; ``required_merge_fields`` marks tags as required either way.
        """
        if merge_fields is None:
            fields = default_merge_fields()
        else:
            fields = []
            for index, spec in enumerate(merge_fields, start=1):
                spec = dict(spec)
                tag = str(spec.pop("tag")).upper()
                fields.append(
                    MergeField(
                        index,
                        tag,
                        str(spec.pop("name", tag.title())),
                        str(spec.pop("type", "text")),
                        display_order=index + 1,
                        **spec,
                    )
                )
        required = {tag.upper() for tag in required_merge_fields}
        unknown = required - {f.tag for f in fields}
        if unknown:
            raise ValueError(f"required_merge_fields not among the merge fields: {sorted(unknown)}")
        for merge_field in fields:
            merge_field.required = merge_field.required or merge_field.tag in required
        with self.lock:
            return self.store.create_list(list_id, name, fields).id

    def list_summaries(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"id": a.id, "name": a.name, "members": len(a.members), "forgotten": len(a.forgotten)}
                for a in self.store.lists.values()
            ]

    def _audience(self, list_id: str) -> Audience:
        audience = self.store.lists.get(list_id)
        if audience is None:
            raise KeyError(f"list {list_id}")
        return audience

    def _member(self, list_id: str, email_or_hash: str) -> tuple[Audience, Member]:
        audience = self._audience(list_id)
        member = audience.members.get(member_key(email_or_hash))
        if member is None:
            raise KeyError(f"member {email_or_hash}")
        return audience, member

    def _rendered(self, audience: Audience, member: Member) -> dict[str, Any]:
        return render_member(member, audience, self.config.default_dc)

    def members(self, list_id: str) -> list[dict[str, Any]]:
        """Every stored member of the audience, archived ones included, as the API would render them."""
        with self.lock:
            audience = self._audience(list_id)
            return [self._rendered(audience, m) for m in audience.members.values()]

    def member(self, list_id: str, email_or_hash: str) -> dict[str, Any] | None:
        """One member as the API renders it, or None when absent or permanently deleted."""
        with self.lock:
            audience = self._audience(list_id)
            member = audience.members.get(member_key(email_or_hash))
            return None if member is None else self._rendered(audience, member)

    def is_forgotten(self, list_id: str, email_or_hash: str) -> bool:
        with self.lock:
            return member_key(email_or_hash) in self._audience(list_id).forgotten

    def forgotten_count(self, list_id: str) -> int:
        with self.lock:
            return len(self._audience(list_id).forgotten)

    def seed_member(
        self,
        list_id: str,
        email_address: str,
        status: str = "subscribed",
        merge_fields: dict[str, Any] | None = None,
        tags: Iterable[str] = (),
        unsubscribe_origin: str = "contact",
    ) -> dict[str, Any]:
        """Put a member straight into the audience, without API validation (for test set-up).

        An ``unsubscribed`` seed counts as unsubscribed by ``unsubscribe_origin`` ("contact" by default:
        the case the connector must never undo).
        """
        with self.lock:
            audience = self._audience(list_id)
            now = now_iso()
            member = Member(
                id=member_key(email_address),
                email_address=email_address.strip(),
                unique_email_id=self.store.new_hex(10),
                web_id=self.store.new_web_id(),
                status=status,
                merge_values={
                    tag: address_from_json(value) if isinstance(value, dict) else value
                    for tag, value in (merge_fields or {}).items()
                },
                timestamp_opt=now if status == "subscribed" else "",
                last_changed=now,
                unsubscribe_origin=unsubscribe_origin if status == "unsubscribed" else None,
            )
            for name in tags:
                member.tags.setdefault(self.store.tag_named(audience, name), now)
            audience.members[member.id] = member
            audience.forgotten.discard(member.id)
            return self._rendered(audience, member)

    def _set_state(self, list_id: str, email_or_hash: str, status: str, origin: str | None) -> dict[str, Any]:
        with self.lock:
            audience, member = self._member(list_id, email_or_hash)
            if member.status == "archived":
                member.archived_from = status
            else:
                member.status = status
            member.unsubscribe_origin = origin
            member.last_changed = now_iso()
            return self._rendered(audience, member)

    def unsubscribe_by_contact(self, list_id: str, email_or_hash: str) -> dict[str, Any]:
        """The contact clicks "unsubscribe": a compliance state the API cannot undo with ``subscribed``."""
        return self._set_state(list_id, email_or_hash, "unsubscribed", "contact")

    def unsubscribe_by_admin(self, list_id: str, email_or_hash: str) -> dict[str, Any]:
        """An account user unsubscribes the contact in the Mailchimp UI."""
        return self._set_state(list_id, email_or_hash, "unsubscribed", "admin")

    def clean(self, list_id: str, email_or_hash: str) -> dict[str, Any]:
        """The address hard-bounced: Mailchimp marks it ``cleaned``."""
        return self._set_state(list_id, email_or_hash, "cleaned", None)

    def set_compliance(self, list_id: str, email_or_hash: str, under_review: bool = True) -> dict[str, Any]:
        """Put the member under (or out of) compliance review; under review it cannot be subscribed."""
        with self.lock:
            audience, member = self._member(list_id, email_or_hash)
            member.under_review = under_review
            return self._rendered(audience, member)
