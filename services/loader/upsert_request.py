"""From a ``MailchimpMemberUpsert`` command to Mailchimp request bodies, and from answers to results.

Pure: standard library, pydantic and ``shared.events`` only. The rules that keep opt-outs safe live
here, where they are unit-tested without a network:

- an upsert sends ``status_if_new``, never ``status``: an existing member's status is Mailchimp's
  (the contact's) business; only ``action="unsubscribe"`` sends ``status``;
- batch-subscribe items carry ``status`` (the only status field that endpoint knows) but the batch is
  sent with ``update_existing: false``, so the status can only ever apply to a new member;
- tags are compared case-insensitively, as Mailchimp may change a tag's case; a tag both added and
  removed is added.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.events import MailchimpMemberUpsert, MemberSynced, MemberSyncFailed

__all__ = [
    "MEMBER_FIELDS",
    "NOT_MAILED",
    "MemberView",
    "Outcome",
    "batch_item",
    "create_body",
    "created_changes",
    "failed_event",
    "is_plain_upsert",
    "is_rename",
    "member_view",
    "merge_changes",
    "missing_tags",
    "subscriber_hash",
    "synced_event",
    "tag_changes",
    "unsubscribe_body",
    "update_body",
]

Outcome = Literal["created", "updated", "renamed", "archived", "unsubscribed", "unchanged"]

#: What the loader reads back from GET (keeps answers small).
MEMBER_FIELDS = "id,email_address,status,merge_fields,tags"

#: Statuses an ``unsubscribe`` leaves alone: already not receiving campaigns.
NOT_MAILED = ("unsubscribed", "cleaned", "archived")


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the trimmed, lower-cased address."""
    return hashlib.md5(email.strip().lower().encode("utf-8")).hexdigest()


def is_rename(cmd: MailchimpMemberUpsert) -> bool:
    """The command moves the customer's member from ``previous_email`` to ``email_address``."""
    return bool(cmd.previous_email) and subscriber_hash(cmd.previous_email or "") != cmd.subscriber_hash


def is_plain_upsert(cmd: MailchimpMemberUpsert) -> bool:
    """Eligible for batch subscribe: creates-or-updates one address, removes no tag, renames nothing."""
    return cmd.action == "upsert" and not is_rename(cmd) and not cmd.tags_remove


@dataclass(frozen=True, slots=True)
class MemberView:
    """The parts of a member document the loader compares against."""

    email_address: str
    status: str
    merge_fields: Mapping[str, Any]
    tags: frozenset[str] = field(default_factory=frozenset)


def member_view(doc: Mapping[str, Any]) -> MemberView:
    """Read a member document (GET/PUT/PATCH answer or a batch ``new_members`` item)."""
    tags = doc.get("tags")
    names = (
        frozenset(str(t.get("name", "")).strip().lower() for t in tags if isinstance(t, Mapping))
        if isinstance(tags, list)
        else frozenset()
    )
    merge = doc.get("merge_fields")
    return MemberView(
        email_address=str(doc.get("email_address", "")),
        status=str(doc.get("status", "")),
        merge_fields=merge if isinstance(merge, Mapping) else {},
        tags=names,
    )


def _norm(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _same(sent: Any, current: Any) -> bool:
    """True only when ``current`` certainly already holds ``sent`` (a wrong "differs" costs one write)."""
    if isinstance(sent, Mapping):
        if not isinstance(current, Mapping):
            return all(_norm(v) == "" for v in sent.values()) and _norm(current) == ""
        return all(_norm(v) == _norm(current.get(k)) for k, v in sent.items())
    if isinstance(current, Mapping):
        return False
    return _norm(sent) == _norm(current)


def merge_changes(wanted: Mapping[str, Any], member: MemberView) -> list[str]:
    """Merge tags whose value in the member differs from the command's, as ``merge_fields.TAG``."""
    current = {k.upper(): v for k, v in member.merge_fields.items()}
    return [
        f"merge_fields.{tag}"
        for tag, value in wanted.items()
        if not _same(value, current.get(tag.upper(), ""))
    ]


def _dedupe(names: Iterable[str]) -> list[str]:
    if not names:
        return []
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        clean = name.strip()
        if clean and clean.lower() not in seen:
            seen.add(clean.lower())
            out.append(clean)
    return out


def tag_changes(
    tags_add: Iterable[str], tags_remove: Iterable[str], current: frozenset[str] | None
) -> list[dict[str, str]]:
    """The ``/tags`` items that make the member's tags right (``current`` None: unknown, send all)."""
    add = _dedupe(tags_add)
    added = {t.lower() for t in add}
    remove = [t for t in _dedupe(tags_remove) if t.lower() not in added]
    if current is not None:
        add = [t for t in add if t.lower() not in current]
        remove = [t for t in remove if t.lower() in current]
    return [{"name": t, "status": "active"} for t in add] + [
        {"name": t, "status": "inactive"} for t in remove
    ]


def missing_tags(tags_add: Iterable[str], member: MemberView) -> list[str]:
    """Tags the command adds that the member does not show (inline tags Mailchimp did not apply)."""
    return [t for t in _dedupe(tags_add) if t.lower() not in member.tags]


def create_body(cmd: MailchimpMemberUpsert, inline_tags: bool) -> dict[str, Any]:
    """PUT body for an address that is not (yet) a member; also safe if it became one meanwhile."""
    body: dict[str, Any] = {
        "email_address": cmd.email_address,
        "status_if_new": cmd.status_if_new,
        "merge_fields": dict(cmd.merge_fields),
    }
    tags = _dedupe(cmd.tags_add)
    if inline_tags and tags:
        body["tags"] = tags
    return body


def update_body(cmd: MailchimpMemberUpsert) -> dict[str, Any]:
    """PUT body for an existing member: fields, and ``status_if_new`` which leaves its status alone."""
    return {
        "email_address": cmd.email_address,
        "status_if_new": cmd.status_if_new,
        "merge_fields": dict(cmd.merge_fields),
    }


def unsubscribe_body(cmd: MailchimpMemberUpsert, change_status: bool) -> dict[str, Any]:
    """PATCH body of ``action="unsubscribe"``: the only place the loader sends ``status``."""
    body: dict[str, Any] = {"merge_fields": dict(cmd.merge_fields)}
    if change_status:
        body["status"] = "unsubscribed"
    return body


def batch_item(cmd: MailchimpMemberUpsert, inline_tags: bool) -> dict[str, Any]:
    """One ``members[]`` item of batch subscribe (sent with ``update_existing: false``)."""
    item: dict[str, Any] = {
        "email_address": cmd.email_address,
        "status": cmd.status_if_new,
        "merge_fields": dict(cmd.merge_fields),
    }
    tags = _dedupe(cmd.tags_add)
    if inline_tags and tags:
        item["tags"] = tags
    return item


def created_changes(cmd: MailchimpMemberUpsert) -> list[str]:
    """``MemberSynced.changed`` of a member the command created."""
    changed = ["email_address", "status", *(f"merge_fields.{tag}" for tag in cmd.merge_fields)]
    if cmd.tags_add:
        changed.append("tags")
    return changed


def synced_event(
    cmd: MailchimpMemberUpsert,
    outcome: Outcome,
    mailchimp_status: str,
    changed: list[str],
    attempts: int,
    via: Literal["member", "batch"],
) -> MemberSynced:
    """The result of a command that took effect (or needed none)."""
    return MemberSynced(
        connection_id=cmd.connection_id,
        customer=cmd.customer,
        causation_id=cmd.event_id,
        correlation_id=cmd.correlation_id,
        audience_id=cmd.audience_id,
        list_id=cmd.list_id,
        email_address=cmd.email_address,
        subscriber_hash=cmd.subscriber_hash,
        outcome=outcome,
        mailchimp_status=mailchimp_status,
        changed=_dedupe(changed),
        attempts=attempts,
        via=via,
        command_occurred_at=cmd.occurred_at,
    )


def failed_event(
    cmd: MailchimpMemberUpsert,
    reason: str,
    permanent: bool,
    detail: str,
    attempts: int,
    http_status: int | None = None,
    response: dict[str, Any] | None = None,
    mailchimp_status: str | None = None,
) -> MemberSyncFailed:
    """The result of a command that did not take effect."""
    return MemberSyncFailed(
        connection_id=cmd.connection_id,
        customer=cmd.customer,
        causation_id=cmd.event_id,
        correlation_id=cmd.correlation_id,
        audience_id=cmd.audience_id,
        list_id=cmd.list_id,
        email_address=cmd.email_address,
        subscriber_hash=cmd.subscriber_hash,
        permanent=permanent,
        reason=reason,
        detail=detail[:2000],
        http_status=http_status,
        mailchimp_status=mailchimp_status,
        response=response,
        attempts=attempts,
    )
