"""Batch subscribe (``POST /lists/{list_id}``): up to ``batch_max`` members in one call.

The call answers 200 whenever the request itself is well formed; each member that fails becomes an item
of ``errors`` instead, with the same messages a single-member write would give.
"""

from __future__ import annotations

from typing import Any

from simulators.mailchimp import problems
from simulators.mailchimp.model import Audience, Member, subscriber_hash
from simulators.mailchimp.render import api_root
from simulators.mailchimp.validation import WRITABLE_STATUSES, check_body, checked_email
from simulators.mailchimp.writes import (
    WriteContext,
    create_member,
    forgotten_problem,
    set_tags,
    tag_names,
    update_member,
)

__all__ = ["BatchOutcome", "batch_subscribe"]

_BATCH_FIELDS = {"members": "array", "update_existing": "boolean", "sync_tags": "boolean"}


class BatchOutcome:
    """Members created and updated, and error items, in request order."""

    def __init__(self) -> None:
        self.created: list[Member] = []
        self.updated: list[Member] = []
        self.errors: list[dict[str, str]] = []

    def fail(self, email: str, problem: problems.MailchimpProblem, code: str = "ERROR_GENERIC") -> None:
        first = problem.errors[0] if problem.errors else {}
        self.errors.append(
            {
                "email_address": email,
                "error": problem.detail,
                "error_code": code,
                "field": first.get("field", ""),
                "field_message": first.get("message", ""),
            }
        )

    def document(self, render: Any, audience: Audience, dc: str) -> dict[str, Any]:
        return {
            "new_members": [render(m, audience, dc) for m in self.created],
            "updated_members": [render(m, audience, dc) for m in self.updated],
            "errors": self.errors,
            "total_created": len(self.created),
            "total_updated": len(self.updated),
            "error_count": len(self.errors),
            "_links": [
                {"rel": "self", "href": f"{api_root(dc)}/lists/{audience.id}", "method": "POST"},
            ],
        }


def batch_subscribe(
    audience: Audience, body: Any, ctx: WriteContext, skip_duplicate_check: bool
) -> BatchOutcome:
    """Apply each member of the batch in order; raise only for a malformed request as a whole."""
    body = check_body(body, required=("members",), fields=_BATCH_FIELDS)
    members = body["members"]
    if len(members) > ctx.config.batch_max:
        raise problems.schema_errors(
            [
                {
                    "field": "members",
                    "message": f"Schema describes array with at most {ctx.config.batch_max} items, "
                    f"{len(members)} found instead",
                }
            ]
        )
    update_existing = body.get("update_existing") is True
    sync_tags = body.get("sync_tags") is True
    outcome = BatchOutcome()
    seen: set[str] = set()
    for item in members:
        raw = item.get("email_address") if isinstance(item, dict) else None
        shown = raw if isinstance(raw, str) else ""
        try:
            _one(audience, item, ctx, update_existing, sync_tags, skip_duplicate_check, seen, outcome)
        except problems.MailchimpProblem as problem:
            outcome.fail(shown, problem)
    return outcome


def _one(
    audience: Audience,
    item: Any,
    ctx: WriteContext,
    update_existing: bool,
    sync_tags: bool,
    skip_duplicate_check: bool,
    seen: set[str],
    outcome: BatchOutcome,
) -> None:
    item = check_body(item, WRITABLE_STATUSES, ("email_address",))
    email = checked_email(item["email_address"], ctx.config.fake_email_patterns)
    key = subscriber_hash(email)
    if key in seen:
        if skip_duplicate_check:
            return
        raise problems.invalid_resource(f"{email} was included more than once in this batch.")
    seen.add(key)
    if key in audience.forgotten:
        raise forgotten_problem(email, ctx.config)
    tags = tag_names(item.get("tags"))
    member = audience.members.get(key)
    if member is None:
        status = item.get("status") or item.get("status_if_new")
        if not status:
            check_body(item, WRITABLE_STATUSES, ("status",))
        outcome.created.append(create_member(audience, email, status, item, ctx, tags))
        return
    if not update_existing:
        outcome.fail(
            email,
            problems.invalid_resource(
                f"{email} is already a list member, do you want to update? please provide "
                "update_existing:true in the request body"
            ),
            "ERROR_CONTACT_EXISTS",
        )
        return
    update_member(audience, member, item, item.get("status"), ctx, allow_rename=False)
    if sync_tags:
        set_tags(member, audience, tags, ctx)
    outcome.updated.append(member)
