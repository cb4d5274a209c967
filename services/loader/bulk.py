"""The bulk path: batch subscribe (``POST /lists/{list_id}``) for large backlogs of new members.

Used when a consumed batch holds many plain upserts for one list (initial load, big replays). It is
sent with ``update_existing: false``, so Mailchimp only ever *creates* members with it: an address
that is already a member comes back as ``ERROR_CONTACT_EXISTS`` and its command goes through the
single-member path, which never changes an existing status. Each item's answer is found again by its
lower-cased address. Anything the loader does not recognise (an unknown error message, an address
missing from the answer, the whole call failing with a 400) also falls back to the single-member path,
which gives a definitive, per-command answer: the batch never dead-letters what could have succeeded.

The planning and answer mapping are pure functions; :func:`subscribe_chunk` makes the call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from services.loader import errors
from services.loader.mailchimp_client import (
    CallFailed,
    MailchimpClient,
    MailchimpUnavailable,
    RetriesExhausted,
)
from services.loader.metrics import BULK_MEMBERS
from services.loader.upsert_request import batch_item
from shared.events import MailchimpMemberUpsert

__all__ = ["BulkAnswer", "chunk_sizes", "map_batch_answer", "subscribe_chunk"]

#: Chunks are not made smaller than this to fill every connection slot.
MIN_CHUNK = 50


@dataclass(frozen=True, slots=True)
class BulkAnswer:
    """What batch subscribe did with one command's member."""

    kind: Literal["created", "updated", "fallback", "failed"]
    attempts: int
    doc: dict[str, Any] | None = None
    reason: str = ""
    permanent: bool = True
    detail: str = ""
    http_status: int | None = None
    response: dict[str, Any] | None = None


def chunk_sizes(total: int, max_members: int, slots: int, *, spread: bool = True) -> list[int]:
    """Split ``total`` members into near-equal calls of at most ``max_members``.

    With ``spread`` (nothing else waiting: no backlog behind this batch, no call in flight), members too
    few to give every connection slot a full call are spread over the slots, in calls of at least
    MIN_CHUNK, so they finish in one round. Otherwise full calls are used: a call costs about the same
    time whatever its size, so under a backlog small calls would waste connection time, and the calls
    of later batches keep the slots busy anyway.
    """
    if total <= 0:
        return []
    calls = math.ceil(total / max_members)
    if spread and calls < slots:
        calls = max(calls, min(slots, total // MIN_CHUNK))
    base, extra = divmod(total, calls)
    return [base + (1 if i < extra else 0) for i in range(calls)]


def _email_key(email: Any) -> str:
    return str(email or "").strip().lower()


def map_batch_answer(
    commands: Sequence[MailchimpMemberUpsert], doc: dict[str, Any], attempts: int
) -> list[BulkAnswer]:
    """Each command's answer, found in ``new_members``, ``updated_members`` or ``errors`` by address."""
    found: dict[str, BulkAnswer] = {}
    for kind in ("created", "updated"):
        items = doc.get("new_members" if kind == "created" else "updated_members")
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                found.setdefault(_email_key(item.get("email_address")), BulkAnswer(kind, attempts, doc=item))
    error_items = doc.get("errors")
    for item in error_items if isinstance(error_items, list) else []:
        if not isinstance(item, dict):
            continue
        key = _email_key(item.get("email_address"))
        reason = errors.batch_error_reason(item)
        if reason in ("contact_exists", "unknown"):
            found.setdefault(key, BulkAnswer("fallback", attempts))
        else:
            detail = str(item.get("error") or "")
            if item.get("field"):
                detail += f" ({item.get('field')}: {item.get('field_message', '')})"
            found.setdefault(
                key,
                BulkAnswer("failed", attempts, reason=reason, detail=detail, http_status=200, response=item),
            )
    return [found.get(_email_key(cmd.email_address), BulkAnswer("fallback", attempts)) for cmd in commands]


async def subscribe_chunk(
    client: MailchimpClient,
    list_id: str,
    commands: Sequence[MailchimpMemberUpsert],
    inline_tags: bool,
    outage_retry: bool,
) -> list[BulkAnswer]:
    """One batch-subscribe call for ``commands`` (distinct addresses, one list, one credential)."""
    body = {"members": [batch_item(cmd, inline_tags) for cmd in commands], "update_existing": False}
    try:
        answer = await client.request("batch_subscribe", "POST", f"/lists/{list_id}", body=body)
    except RetriesExhausted as exc:
        if exc.outage and outage_retry:
            raise MailchimpUnavailable(str(exc)) from None
        results = [BulkAnswer("fallback", exc.attempts)] * len(commands)
    except CallFailed as exc:
        if exc.reason in (errors.AUTH_FAILED, errors.NOT_FOUND, errors.FORBIDDEN):
            # About the list or the key, not a member: the single-member path would say the same.
            failed = BulkAnswer(
                "failed",
                exc.attempts,
                reason=exc.reason,
                detail=exc.detail,
                http_status=exc.status,
                response=exc.problem,
            )
            results = [failed] * len(commands)
        else:
            results = [BulkAnswer("fallback", exc.attempts)] * len(commands)
    else:
        results = map_batch_answer(commands, answer.doc or {}, answer.attempts)
    for result in results:
        BULK_MEMBERS.labels(result.kind).inc()
    return results
