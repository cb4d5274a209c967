"""A customer's stored records as a causal tree with one-line explanations: pure, no I/O.

poll run -> change -> command -> result: each entry's parent is the entry whose ``event_id`` is its
``causation_id`` (a dead letter hangs under the record it dead-lettered, a replayed command under the
change of the command it repeats). Entries are ordered depth-first, siblings by time, so printing them
indented reads as the story of the customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from .models import TimelineEntry

__all__ = ["build_entries", "describe"]


def _payload(row: Mapping[str, Any]) -> dict[str, Any] | None:
    text = row.get("payload")
    if not text:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _email(payload: Mapping[str, Any]) -> str:
    return str(payload.get("email_address") or "?")


def describe(row: Mapping[str, Any], payload: Mapping[str, Any] | None) -> str:
    """One line saying what a stored record means for the customer."""
    kind, event_type, p = row["kind"], row.get("event_type"), payload or {}
    if kind == "undecodable":
        return f"undecodable record on {row['topic']}: {row.get('reason')}: {row.get('detail') or ''}".rstrip(
            ": "
        )
    if kind == "duplicate":
        return f"repeated delivery of event {row.get('ref_event_id')} (stored once, ignored here)"
    if kind == "dead_letter":
        what = f"{event_type} " if event_type else ""
        stage = row.get("outcome") or "a consumer"
        detail = f": {row['detail']}" if row.get("detail") else ""
        return f"{what}dead-lettered by {stage}: {row.get('reason')}{detail}"
    if event_type == "CustomerChanged":
        changed = p.get("changed_columns") or []
        email = (p.get("row") or {}).get("Email")
        text = f"customer {p.get('change')} in SYSPRO"
        if email is not None:
            text += f" (Email {email!r})"
        if changed:
            text += f"; changed: {', '.join(map(str, changed[:8]))}"
        return text
    if event_type == "MailchimpMemberUpsert":
        text = f"command: {p.get('action', 'upsert')} member {_email(p)} in audience {p.get('audience_id')}"
        if p.get("previous_email"):
            text += f" (rename from {p['previous_email']})"
        if p.get("replay_of"):
            text += f" [replay of {p['replay_of']}]"
        return text
    if event_type == "MemberSynced":
        changed = p.get("changed") or []
        text = f"Mailchimp: {p.get('outcome')} {_email(p)}, status {p.get('mailchimp_status')}"
        return text + (f"; changed: {', '.join(map(str, changed[:8]))}" if changed else "")
    if event_type == "MemberSyncFailed":
        status = f" (HTTP {p['http_status']})" if p.get("http_status") else ""
        kind_text = "permanently" if p.get("permanent") else "after retries"
        detail = f": {p['detail']}" if p.get("detail") else ""
        return f"Mailchimp failed {kind_text}{status}: {p.get('reason')}{detail}"
    if event_type == "CustomerRejected":
        label = (
            "excluded by policy"
            if p.get("reason") == "excluded_by_policy"
            else f"rejected: {p.get('reason')}"
        )
        where = f" {p['field']}={p.get('value')!r}" if p.get("field") else ""
        owner = f" (owned by customer {p['owner']})" if p.get("owner") else ""
        scope = f" in audience {p['audience_id']}" if p.get("audience_id") else " for every audience"
        detail = f": {p['detail']}" if p.get("detail") else ""
        return f"{label}{scope}{where}{owner}{detail}"
    if event_type in ("PollRunCompleted", "PollRunFailed"):
        return f"poll run {p.get('run_id')} {row.get('outcome')}"
    return str(event_type or kind)


def build_entries(rows: Sequence[Mapping[str, Any]]) -> list[TimelineEntry]:
    """Rows of ``events`` (one customer's, in time order) as a depth-first causal tree."""
    payloads = [_payload(r) for r in rows]
    ids = {r["event_id"] for r in rows if r.get("event_id")}
    parents: dict[int, str | None] = {}
    for i, r in enumerate(rows):
        parent = r.get("ref_event_id") if r["kind"] in ("dead_letter", "duplicate") else r.get("causation_id")
        parents[i] = parent if parent in ids else None
    children: dict[str | None, list[int]] = {}
    for i in range(len(rows)):
        children.setdefault(parents[i], []).append(i)
    by_id = {r["event_id"]: i for i, r in enumerate(rows) if r.get("event_id")}
    order: list[tuple[int, int]] = []
    visited: set[int] = set()

    def visit(index: int, depth: int) -> None:
        if index in visited:
            return
        visited.add(index)
        order.append((index, depth))
        event_id = rows[index].get("event_id")
        if event_id and rows[index]["kind"] == "event":
            for child in children.get(event_id, []):
                visit(child, depth + 1)

    for root in children.get(None, []):
        visit(root, 0)
    for index in range(len(rows)):
        # Cycles cannot happen with fresh ids, but a hand-made record must not hide others.
        visit(index, 0)
    entries = []
    for index, depth in order:
        r, p = rows[index], payloads[index]
        entries.append(
            TimelineEntry(
                row_id=r["id"],
                kind=r["kind"],
                topic=r["topic"],
                partition=r["kafka_partition"],
                offset=r["kafka_offset"],
                event_type=r.get("event_type"),
                event_id=r.get("event_id"),
                causation_id=r.get("causation_id"),
                correlation_id=r.get("correlation_id"),
                parent=parents[index] if parents[index] in by_id else None,
                depth=depth,
                occurred_at=r["occurred_at"],
                audience_id=r.get("audience_id"),
                outcome=r.get("outcome"),
                reason=r.get("reason"),
                detail=r.get("detail"),
                summary=describe(r, p),
                response=(p or {}).get("response") if r.get("event_type") == "MemberSyncFailed" else None,
                payload=p,
            )
        )
    return entries
