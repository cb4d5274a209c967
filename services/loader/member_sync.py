"""The single-member path: apply one command with GET, PUT/PATCH, DELETE and ``/tags``.

Every command reads the member first (one small GET). That answer decides everything that follows
and is what makes the result honest: ``created`` versus ``updated`` versus ``unchanged``, the list of
fields that really changed, only the tag changes that are needed, and no write at all when the member
already looks right. Writes are idempotent (PUT to the subscriber hash, tags by name, DELETE that
treats 404 as done), so running a command twice after a crash changes nothing the second time.

Steps, in order:

1. rename (``previous_email`` set): PATCH the old hash with the new address. The old member absent
   (404) or cleaned (cannot change address): carry on at the new address. The new address already a
   member: take the managed tags off the old member, leave it, and carry on with the existing one.
2. the action at the new hash: ``upsert`` (PUT with ``status_if_new`` only), ``archive`` (DELETE,
   except for an unsubscribed member, see ADR 0031) or ``unsubscribe`` (PATCH ``status``);
3. tags: one POST with the additions and removals the member actually needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from services.loader import errors
from services.loader.mailchimp_client import (
    Answer,
    CallFailed,
    MailchimpClient,
    MailchimpUnavailable,
    RetriesExhausted,
)
from services.loader.upsert_request import (
    MEMBER_FIELDS,
    NOT_MAILED,
    MemberView,
    Outcome,
    create_body,
    created_changes,
    failed_event,
    is_rename,
    member_view,
    merge_changes,
    missing_tags,
    subscriber_hash,
    synced_event,
    tag_changes,
    unsubscribe_body,
    update_body,
)
from shared.events import MailchimpMemberUpsert, MemberSynced, MemberSyncFailed

__all__ = ["ABSENT", "MemberSync", "Tally"]

#: ``mailchimp_status`` of a result when no member exists at the address (nothing to archive or
#: unsubscribe).
ABSENT = "absent"

Result = MemberSynced | MemberSyncFailed


@dataclass
class Tally:
    """Attempts spent on one command: 1 + every retry of every request it made."""

    retries: int = 0
    changed: list[str] = field(default_factory=list)
    #: The member's status as last seen in an answer (reported with a failure too).
    status: str | None = None

    def count(self, attempts: int) -> None:
        self.retries += max(0, attempts - 1)

    @property
    def attempts(self) -> int:
        return 1 + self.retries


def _members(list_id: str, member_hash: str) -> str:
    return f"/lists/{list_id}/members/{member_hash}"


class MemberSync:
    """Apply commands one at a time for a credential's client."""

    def __init__(self, inline_tags: bool, outage_retry: bool) -> None:
        self.inline_tags = inline_tags
        self.outage_retry = outage_retry

    async def apply(
        self, client: MailchimpClient, cmd: MailchimpMemberUpsert, tally: Tally | None = None
    ) -> Result:
        """The command's result; raises only :class:`MailchimpUnavailable` (an outage)."""
        tally = tally or Tally()
        try:
            return await self._apply(client, cmd, tally)
        except (CallFailed, RetriesExhausted) as exc:
            return self.failed(cmd, exc, tally)

    async def after_batch(
        self,
        client: MailchimpClient,
        cmd: MailchimpMemberUpsert,
        kind: Literal["created", "updated"],
        member: MemberView,
        tally: Tally,
    ) -> Result:
        """Finish a command batch subscribe applied: post the tags Mailchimp did not take inline."""
        tally.status = member.status
        try:
            await self.add_missing_tags(client, cmd, member, tally)
        except (CallFailed, RetriesExhausted) as exc:
            return self.failed(cmd, exc, tally)
        tally.changed.extend(created_changes(cmd))
        return synced_event(cmd, kind, member.status, tally.changed, tally.attempts, "batch")

    def failed(
        self, cmd: MailchimpMemberUpsert, exc: CallFailed | RetriesExhausted, tally: Tally
    ) -> MemberSyncFailed:
        """The failure result; ``retries_exhausted`` only when Mailchimp is not down for everyone
        (then :class:`MailchimpUnavailable` makes the whole batch wait instead)."""
        tally.count(exc.attempts)
        if isinstance(exc, CallFailed):
            return failed_event(
                cmd,
                exc.reason,
                exc.verdict.permanent,
                exc.detail,
                tally.attempts,
                exc.status,
                exc.problem,
                tally.status,
            )
        if exc.outage and self.outage_retry:
            raise MailchimpUnavailable(str(exc)) from None
        return failed_event(
            cmd,
            errors.RETRIES_EXHAUSTED,
            False,
            f"{exc.endpoint}: no success after {exc.attempts} attempts (last: {exc.cause})",
            tally.attempts,
            exc.status,
            mailchimp_status=tally.status,
        )

    @staticmethod
    async def _call(
        client: MailchimpClient,
        tally: Tally,
        endpoint: str,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        accept: tuple[int, ...] = (),
    ) -> Answer:
        answer = await client.request(endpoint, method, path, body=body, params=params, accept=accept)
        tally.count(answer.attempts)
        if answer.ok and answer.doc is not None and isinstance(answer.doc.get("status"), str):
            tally.status = answer.doc["status"]
        return answer

    async def _apply(self, client: MailchimpClient, cmd: MailchimpMemberUpsert, tally: Tally) -> Result:
        member_hash = subscriber_hash(cmd.email_address)
        renamed, member = await self._rename(client, cmd, tally) if is_rename(cmd) else (False, None)
        if member is None:
            got = await self._call(
                client,
                tally,
                "member_get",
                "GET",
                _members(cmd.list_id, member_hash),
                params={"fields": MEMBER_FIELDS},
                accept=(404,),
            )
            member = member_view(got.doc or {}) if got.ok else None
        if cmd.action == "archive":
            return await self._archive(client, cmd, member, tally)
        if cmd.action == "unsubscribe":
            return await self._unsubscribe(client, cmd, member, renamed, tally)
        return await self._upsert(client, cmd, member, renamed, tally)

    async def _rename(
        self, client: MailchimpClient, cmd: MailchimpMemberUpsert, tally: Tally
    ) -> tuple[bool, MemberView | None]:
        old_hash = subscriber_hash(cmd.previous_email or "")
        answer = await self._call(
            client,
            tally,
            "member_patch",
            "PATCH",
            _members(cmd.list_id, old_hash),
            body={"email_address": cmd.email_address},
            accept=(400, 404),
        )
        if answer.ok:
            tally.changed.append("email_address")
            return True, member_view(answer.doc or {})
        reason = answer.verdict.reason
        if answer.status == 404 or reason == errors.CANNOT_RENAME:
            return False, None
        if reason == errors.ALREADY_IN_LIST:
            # The new address is already a member (Grouparoo's rule): the old member keeps its data
            # but loses the tags this connector manages, and the existing member becomes ours.
            managed = tag_changes([], [*cmd.tags_add, *cmd.tags_remove], None)
            if managed:
                await self._call(
                    client,
                    tally,
                    "member_tags",
                    "POST",
                    _members(cmd.list_id, old_hash) + "/tags",
                    body={"tags": managed},
                    accept=(404,),
                )
            return False, None
        raise CallFailed("member_patch", answer.status, answer.verdict, answer.doc, 1)

    async def _archive(
        self, client: MailchimpClient, cmd: MailchimpMemberUpsert, member: MemberView | None, tally: Tally
    ) -> Result:
        changed = tally.changed
        if member is None:
            return self._done(cmd, "unchanged", ABSENT, tally)
        if member.status in ("archived", "unsubscribed"):
            # An unsubscribed member is left as it is: archiving it would let a later upsert
            # re-activate it with status_if_new and lose the opt-out.
            return self._done(cmd, "renamed" if changed else "unchanged", member.status, tally)
        answer = await self._call(
            client,
            tally,
            "member_delete",
            "DELETE",
            _members(cmd.list_id, subscriber_hash(cmd.email_address)),
            accept=(404,),
        )
        if not answer.ok:
            return self._done(cmd, "unchanged", ABSENT, tally)
        changed.append("status")
        return self._done(cmd, "archived", "archived", tally)

    async def _unsubscribe(
        self,
        client: MailchimpClient,
        cmd: MailchimpMemberUpsert,
        member: MemberView | None,
        renamed: bool,
        tally: Tally,
    ) -> Result:
        if member is None:
            return self._done(cmd, "unchanged", ABSENT, tally)
        change_status = member.status not in NOT_MAILED
        diffs = merge_changes(cmd.merge_fields, member)
        if change_status or diffs:
            answer = await self._call(
                client,
                tally,
                "member_patch",
                "PATCH",
                _members(cmd.list_id, subscriber_hash(cmd.email_address)),
                body=unsubscribe_body(cmd, change_status),
            )
            member = member_view(answer.doc or {})
            tally.changed.extend(diffs)
            if change_status:
                tally.changed.append("status")
        await self._tags(client, cmd, member, tally)
        outcome: Outcome = "unsubscribed" if change_status else self._quiet_outcome(renamed, tally)
        return self._done(cmd, outcome, member.status, tally)

    async def _upsert(
        self,
        client: MailchimpClient,
        cmd: MailchimpMemberUpsert,
        member: MemberView | None,
        renamed: bool,
        tally: Tally,
    ) -> Result:
        path = _members(cmd.list_id, subscriber_hash(cmd.email_address))
        if member is None:
            answer = await self._call(
                client, tally, "member_put", "PUT", path, body=create_body(cmd, self.inline_tags)
            )
            created = member_view(answer.doc or {})
            await self.add_missing_tags(client, cmd, created, tally)
            tally.changed.extend(created_changes(cmd))
            return self._done(cmd, "created", created.status, tally)
        diffs = merge_changes(cmd.merge_fields, member)
        if diffs or member.status == "archived":
            before = member.status
            answer = await self._call(client, tally, "member_put", "PUT", path, body=update_body(cmd))
            member = member_view(answer.doc or {})
            tally.changed.extend(diffs)
            if member.status != before:
                tally.changed.append("status")
        await self._tags(client, cmd, member, tally)
        return self._done(cmd, self._quiet_outcome(renamed, tally), member.status, tally)

    async def _tags(
        self, client: MailchimpClient, cmd: MailchimpMemberUpsert, member: MemberView, tally: Tally
    ) -> None:
        changes = tag_changes(cmd.tags_add, cmd.tags_remove, member.tags)
        if changes:
            await self._call(
                client,
                tally,
                "member_tags",
                "POST",
                _members(cmd.list_id, subscriber_hash(cmd.email_address)) + "/tags",
                body={"tags": changes},
            )
            tally.changed.append("tags")

    async def add_missing_tags(
        self, client: MailchimpClient, cmd: MailchimpMemberUpsert, created: MemberView, tally: Tally
    ) -> None:
        """Post the tags a new member should have but does not show (inline tags not applied)."""
        missing = missing_tags(cmd.tags_add, created)
        if missing:
            await self._call(
                client,
                tally,
                "member_tags",
                "POST",
                _members(cmd.list_id, subscriber_hash(cmd.email_address)) + "/tags",
                body={"tags": [{"name": t, "status": "active"} for t in missing]},
            )

    @staticmethod
    def _quiet_outcome(renamed: bool, tally: Tally) -> Outcome:
        if renamed:
            return "renamed"
        return "updated" if tally.changed else "unchanged"

    @staticmethod
    def _done(cmd: MailchimpMemberUpsert, outcome: Outcome, status: str, tally: Tally) -> MemberSynced:
        return synced_event(cmd, outcome, status, tally.changed, tally.attempts, "member")
