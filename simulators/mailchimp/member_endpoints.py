"""Member endpoints: list, read, add, upsert, patch, archive, delete permanently, tags."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from simulators.mailchimp import problems
from simulators.mailchimp.calls import Call, Reply
from simulators.mailchimp.model import Audience, Member
from simulators.mailchimp.render import api_root, render_member, render_tags
from simulators.mailchimp.validation import truthy
from simulators.mailchimp.writes import (
    archive_member,
    delete_permanent,
    member_key,
    patch_member,
    post_member,
    put_member,
    update_tags,
)

__all__ = [
    "delete_forever",
    "delete_one",
    "get_member",
    "get_members",
    "get_tags",
    "patch_one",
    "post_members",
    "post_tags",
    "put_one",
]


def _member(call: Call, audience: Audience) -> Member:
    member = audience.members.get(member_key(call.params["subscriber_hash"]))
    if member is None:
        raise problems.resource_not_found()
    return member


def _when(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace(" ", "T"))
    except ValueError:
        raise problems.invalid_resource(f"Invalid date: {raw}") from None


def _time_filter(name: str, raw: str | None, after: bool) -> Callable[[Member], bool] | None:
    bound = _when(raw)
    if bound is None:
        return None

    def keep(member: Member) -> bool:
        value = _when(getattr(member, name))
        return value is not None and (value > bound if after else value < bound)

    return keep


def get_members(call: Call) -> Reply:
    audience = call.audience()
    count, offset = call.page()
    query = call.query
    status = query.get("status")
    checks: list[Callable[[Member], bool]] = []
    if status:
        checks.append(lambda m: m.status == status)
    else:
        checks.append(lambda m: m.status != "archived")
    if query.get("email_type"):
        checks.append(lambda m: m.email_type == query["email_type"])
    if truthy(query.get("vip_only")):
        checks.append(lambda m: m.vip)
    if query.get("unique_email_id"):
        checks.append(lambda m: m.unique_email_id == query["unique_email_id"])
    for param, attr, after in (
        ("since_timestamp_opt", "timestamp_opt", True),
        ("before_timestamp_opt", "timestamp_opt", False),
        ("since_last_changed", "last_changed", True),
        ("before_last_changed", "last_changed", False),
    ):
        check = _time_filter(attr, query.get(param), after)
        if check is not None:
            checks.append(check)
    selected = [m for m in audience.members.values() if all(check(m) for check in checks)]
    sort_field = query.get("sort_field")
    if sort_field in ("timestamp_opt", "timestamp_signup", "last_changed"):
        selected.sort(
            key=lambda m: getattr(m, sort_field), reverse=query.get("sort_dir", "").upper() == "DESC"
        )
    return call.projected(
        {
            "members": [render_member(m, audience, call.dc) for m in selected[offset : offset + count]],
            "list_id": audience.id,
            "total_items": len(selected),
            "_links": [
                {"rel": "self", "href": f"{api_root(call.dc)}/lists/{audience.id}/members", "method": "GET"}
            ],
        }
    )


def post_members(call: Call) -> Reply:
    audience = call.audience()
    member = post_member(audience, call.body, call.write_context())
    return Reply(200, render_member(member, audience, call.dc))


def get_member(call: Call) -> Reply:
    audience = call.audience()
    return call.projected(render_member(_member(call, audience), audience, call.dc))


def put_one(call: Call) -> Reply:
    audience = call.audience()
    member, _ = put_member(
        audience, member_key(call.params["subscriber_hash"]), call.body, call.write_context()
    )
    return Reply(200, render_member(member, audience, call.dc))


def patch_one(call: Call) -> Reply:
    audience = call.audience()
    member = patch_member(
        audience, member_key(call.params["subscriber_hash"]), call.body, call.write_context()
    )
    return Reply(200, render_member(member, audience, call.dc))


def delete_one(call: Call) -> Reply:
    archive_member(call.audience(), member_key(call.params["subscriber_hash"]), call.write_context())
    return Reply(204)


def delete_forever(call: Call) -> Reply:
    delete_permanent(call.audience(), member_key(call.params["subscriber_hash"]))
    return Reply(204)


def get_tags(call: Call) -> Reply:
    audience = call.audience()
    member = _member(call, audience)
    count, offset = call.page()
    return call.projected(
        {
            "tags": render_tags(list(member.tags.items())[offset : offset + count]),
            "total_items": len(member.tags),
            "_links": [],
        }
    )


def post_tags(call: Call) -> Reply:
    update_tags(call.audience(), member_key(call.params["subscriber_hash"]), call.body, call.write_context())
    return Reply(204)
