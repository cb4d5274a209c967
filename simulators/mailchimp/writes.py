"""Member writes and the status machine: create, upsert, patch, rename, archive, forget, tag.

Every write validates everything first and only then mutates, so a refused request leaves the member
exactly as it was. The compliance rules live in :func:`refuses_subscribe`: a contact who opted out or
bounced cannot be put back to ``subscribed`` through the API (``pending`` remains possible).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulators.mailchimp import problems
from simulators.mailchimp.config import MailchimpSimConfig
from simulators.mailchimp.model import Audience, Member, Store, subscriber_hash
from simulators.mailchimp.validation import check_body, checked_email, merged_values

__all__ = [
    "WriteContext",
    "archive_member",
    "create_member",
    "delete_permanent",
    "member_key",
    "patch_member",
    "post_member",
    "put_member",
    "refuses_subscribe",
    "set_tags",
    "tag_names",
    "update_member",
    "update_tags",
]

_PUT_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
_PATCH_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending")


@dataclass(frozen=True, slots=True)
class WriteContext:
    """What one API call brings to a write besides its body."""

    store: Store
    config: MailchimpSimConfig
    now: str
    client_ip: str
    skip_merge_validation: bool = False


def member_key(segment: str) -> str:
    """The subscriber hash a path segment names: an MD5 as given, or an email address hashed."""
    segment = segment.strip()
    if "@" in segment:
        return subscriber_hash(segment)
    return segment.lower()


def forgotten_problem(email: str, config: MailchimpSimConfig) -> problems.MailchimpProblem:
    if config.forgotten_mode == "compliance":
        return problems.compliance_state(email)
    return problems.forgotten_email(email)


def refuses_subscribe(member: Member, config: MailchimpSimConfig) -> bool:
    """True when the API may not set this member to ``subscribed`` (Member In Compliance State)."""
    if member.under_review:
        return True
    status = member.effective_status
    if status == "cleaned":
        return True
    if status == "unsubscribed":
        policy = config.resubscribe_unsubscribed
        if policy == "refuse":
            return True
        if policy == "by_origin":
            return member.unsubscribe_origin == "contact"
    return False


def _set_status(member: Member, status: str, ctx: WriteContext) -> None:
    if status == member.status:
        return
    member.status = status
    member.archived_from = None
    if status == "subscribed":
        member.timestamp_opt = ctx.now
        member.ip_opt = ctx.client_ip
    member.unsubscribe_origin = "api" if status == "unsubscribed" else None


def _apply_fields(member: Member, body: dict[str, Any], values: dict[str, Any], ctx: WriteContext) -> None:
    member.merge_values = values
    if "email_type" in body:
        member.email_type = body["email_type"]
    if "interests" in body:
        member.interests.update(body["interests"])
    if "language" in body:
        member.language = body["language"]
    if "vip" in body:
        member.vip = body["vip"]
    location = body.get("location")
    if location:
        member.latitude = float(location.get("latitude", member.latitude))
        member.longitude = float(location.get("longitude", member.longitude))
    if "marketing_permissions" in body:
        member.marketing_permissions = tuple(p for p in body["marketing_permissions"] if isinstance(p, dict))
    for name in ("ip_signup", "timestamp_signup", "ip_opt", "timestamp_opt"):
        if name in body:
            setattr(member, name, body[name])
    member.last_changed = ctx.now


def tag_names(raw: Any) -> list[str]:
    # POST accepts ["name", ...]; {"name": ...} items are taken too, as several clients send them.
    names: list[str] = []
    for item in raw or []:
        name = item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str) and name.strip():
            names.append(name)
    return names


def set_tags(member: Member, audience: Audience, names: list[str], ctx: WriteContext) -> None:
    member.tags = {}
    for name in names:
        member.tags.setdefault(ctx.store.tag_named(audience, name), ctx.now)


def create_member(
    audience: Audience,
    email: str,
    status: str,
    body: dict[str, Any],
    ctx: WriteContext,
    tags: list[str] | None = None,
) -> Member:
    """Add a new member; ``email`` is already checked and its hash is neither present nor forgotten."""
    values = merged_values(audience, body.get("merge_fields"), {}, True, ctx.skip_merge_validation)
    member = Member(
        id=subscriber_hash(email),
        email_address=email,
        unique_email_id=ctx.store.new_hex(10),
        web_id=ctx.store.new_web_id(),
        status=status,
    )
    if status == "subscribed":
        member.timestamp_opt = ctx.now
        member.ip_opt = ctx.client_ip
    if status == "unsubscribed":
        member.unsubscribe_origin = "api"
    _apply_fields(member, body, values, ctx)
    if tags:
        set_tags(member, audience, tags, ctx)
    audience.members[member.id] = member
    return member


def update_member(
    audience: Audience,
    member: Member,
    body: dict[str, Any],
    status: str | None,
    ctx: WriteContext,
    allow_rename: bool = True,
) -> Member:
    """Apply a PUT/PATCH/batch update to an existing member (``status`` None keeps the current one)."""
    new_email: str | None = None
    new_key: str | None = None
    raw_email = body.get("email_address")
    if allow_rename and raw_email is not None:
        new_email = checked_email(raw_email, ctx.config.fake_email_patterns)
        key = subscriber_hash(new_email)
        if key != member.id:
            if member.effective_status == "cleaned":
                raise problems.cleaned_email_change()
            other = audience.members.get(key)
            if other is not None:
                raise problems.already_in_list(new_email, other.status)
            if key in audience.forgotten:
                raise forgotten_problem(new_email, ctx.config)
            new_key = key
    values = merged_values(
        audience, body.get("merge_fields"), member.merge_values, False, ctx.skip_merge_validation
    )
    if status == "subscribed" and member.status != "subscribed" and refuses_subscribe(member, ctx.config):
        raise problems.compliance_state(member.email_address)
    if new_key is not None:
        del audience.members[member.id]
        member.id = new_key
        audience.members[new_key] = member
    if new_email is not None:
        member.email_address = new_email
    if status is not None:
        _set_status(member, status, ctx)
    _apply_fields(member, body, values, ctx)
    return member


def put_member(audience: Audience, key: str, body: Any, ctx: WriteContext) -> tuple[Member, bool]:
    """``PUT /lists/{id}/members/{hash}``: create with ``status_if_new`` or update with ``status``."""
    body = check_body(body, _PUT_STATUSES)
    member = audience.members.get(key)
    if member is None:
        return _put_create(audience, key, body, ctx), True
    status = body.get("status")
    if member.status == "archived":
        if ctx.config.member_exists_on_deleted:
            raise problems.member_exists(member.email_address)
        # Un-archiving takes the status given; with only status_if_new, that one.
        status = status or body.get("status_if_new")
    return update_member(audience, member, body, status, ctx), False


def _put_create(audience: Audience, key: str, body: dict[str, Any], ctx: WriteContext) -> Member:
    first, second = ("status_if_new", "status")
    if ctx.config.status_on_create == "status":
        first, second = second, first
    status: str = body.get(first) or body.get(second) or ""
    missing = tuple(
        name
        for name, given in (("email_address", "email_address" in body), ("status_if_new", bool(status)))
        if not given
    )
    if missing:
        check_body(body, _PUT_STATUSES, missing)
    email = checked_email(body["email_address"], ctx.config.fake_email_patterns)
    if subscriber_hash(email) != key:
        raise problems.invalid_resource(
            "The email address in the request body does not match the subscriber hash in the URL."
        )
    if key in audience.forgotten:
        raise forgotten_problem(email, ctx.config)
    return create_member(audience, email, status, body, ctx, tag_names(body.get("tags")))


def post_member(audience: Audience, body: Any, ctx: WriteContext) -> Member:
    """``POST /lists/{id}/members``: add only; an address already on the list is Member Exists."""
    body = check_body(body, _PUT_STATUSES, ("email_address", "status"))
    email = checked_email(body["email_address"], ctx.config.fake_email_patterns)
    key = subscriber_hash(email)
    if key in audience.members:
        raise problems.member_exists(email)
    if key in audience.forgotten:
        raise forgotten_problem(email, ctx.config)
    return create_member(audience, email, body["status"], body, ctx, tag_names(body.get("tags")))


def patch_member(audience: Audience, key: str, body: Any, ctx: WriteContext) -> Member:
    """``PATCH /lists/{id}/members/{hash}``: partial update of an existing member (no transactional)."""
    member = audience.members.get(key)
    if member is None:
        raise problems.resource_not_found()
    body = check_body(body, _PATCH_STATUSES)
    return update_member(audience, member, body, body.get("status"), ctx)


def archive_member(audience: Audience, key: str, ctx: WriteContext) -> None:
    """``DELETE /lists/{id}/members/{hash}``: archive (still addressable, ``status=archived``)."""
    member = audience.members.get(key)
    if member is None:
        raise problems.resource_not_found()
    if member.status in ctx.config.undeletable_statuses:
        raise problems.not_removable()
    if member.status != "archived":
        member.archived_from = member.status
        member.status = "archived"
        member.last_changed = ctx.now


def delete_permanent(audience: Audience, key: str) -> None:
    """``actions/delete-permanent``: erase the member, remember only that the address is forgotten."""
    if audience.members.pop(key, None) is None:
        raise problems.resource_not_found()
    audience.forgotten.add(key)


def update_tags(audience: Audience, key: str, body: Any, ctx: WriteContext) -> None:
    """``POST …/tags``: activate or deactivate tags; unknown active tags are created."""
    member = audience.members.get(key)
    if member is None:
        raise problems.resource_not_found()
    body = check_body(body, required=("tags",), fields={})
    items = body["tags"]
    if not isinstance(items, list):
        # A single tag object instead of an array is accepted and silently ignored.
        return
    errors: list[dict[str, str]] = []
    for index, item in enumerate(items):
        where = f"tags.item:{index}"
        if not isinstance(item, dict):
            errors.append({"field": where, "message": "Schema describes object"})
            continue
        missing = [name for name in ("name", "status") if name not in item]
        if missing:
            errors.append(
                {"field": where, "message": f"Required fields were not provided: {', '.join(missing)}"}
            )
        elif not isinstance(item["name"], str) or not item["name"].strip():
            errors.append({"field": f"{where}.name", "message": "Tag name must be a non-empty string"})
        elif item["status"] not in ("active", "inactive"):
            errors.append({"field": f"{where}.status", "message": "Value must be one of: inactive, active"})
    if errors:
        raise problems.schema_errors(errors)
    for item in items:
        tag = ctx.store.tag_named(audience, item["name"])
        if item["status"] == "active":
            member.tags.setdefault(tag, ctx.now)
        else:
            member.tags.pop(tag, None)
    member.last_changed = ctx.now
