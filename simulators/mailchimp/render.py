"""Turn the simulator's state into the JSON documents Mailchimp returns, and apply ``fields`` filters.

Links point at the real API host of the routed data center, as real answers do; clients do not follow
them.
"""

from __future__ import annotations

from typing import Any

from simulators.mailchimp.model import Audience, Member, MergeField, Tag, address_to_json

__all__ = ["api_root", "project", "render_list", "render_member", "render_merge_field", "render_tags"]

_LEAF = "\x00leaf"


def api_root(dc: str) -> str:
    return f"https://{dc}.api.mailchimp.com/3.0"


def _link(rel: str, href: str, method: str = "GET", schema: str | None = None) -> dict[str, str]:
    link = {"rel": rel, "href": href, "method": method}
    if schema is not None:
        link["targetSchema"] = f"https://api.mailchimp.com/schema/3.0/{schema}"
    return link


def _json_value(value: Any) -> Any:
    # Only ADDRESS values are stored as tuples.
    return address_to_json(value) if isinstance(value, tuple) else value


def render_member(member: Member, audience: Audience, dc: str) -> dict[str, Any]:
    """The List_Members document of one member."""
    values = member.merge_values
    self_href = f"{api_root(dc)}/lists/{audience.id}/members/{member.id}"
    doc: dict[str, Any] = {
        "id": member.id,
        "email_address": member.email_address,
        "unique_email_id": member.unique_email_id,
        "web_id": member.web_id,
        "email_type": member.email_type,
        "status": member.status,
        # Unset values read back as "" whatever the type, ADDRESS included.
        "merge_fields": {tag: _json_value(values.get(tag, "")) for tag in audience.merge_fields},
        "interests": dict(member.interests),
        "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
        "ip_signup": member.ip_signup,
        "timestamp_signup": member.timestamp_signup,
        "ip_opt": member.ip_opt,
        "timestamp_opt": member.timestamp_opt,
        "member_rating": member.member_rating,
        "last_changed": member.last_changed,
        "language": member.language,
        "vip": member.vip,
        "email_client": "",
        "location": {
            "latitude": member.latitude,
            "longitude": member.longitude,
            "gmtoff": 0,
            "dstoff": 0,
            "country_code": "",
            "timezone": "",
        },
        "source": member.source,
        "tags_count": len(member.tags),
        "tags": [{"id": tag.id, "name": tag.name} for tag in member.tags],
        "list_id": audience.id,
        "_links": [
            _link("self", self_href, schema="Lists/Members/Instance.json"),
            _link("parent", f"{api_root(dc)}/lists/{audience.id}/members"),
            _link("update", self_href, "PATCH"),
            _link("upsert", self_href, "PUT"),
            _link("delete", self_href, "DELETE"),
            _link("delete_permanent", f"{self_href}/actions/delete-permanent", "POST"),
        ],
    }
    if member.marketing_permissions:
        doc["marketing_permissions"] = [dict(p) for p in member.marketing_permissions]
    return doc


def render_merge_field(merge_field: MergeField, audience: Audience, dc: str) -> dict[str, Any]:
    href = f"{api_root(dc)}/lists/{audience.id}/merge-fields/{merge_field.merge_id}"
    return {
        "merge_id": merge_field.merge_id,
        "tag": merge_field.tag,
        "name": merge_field.name,
        "type": merge_field.type,
        "required": merge_field.required,
        "default_value": merge_field.default_value,
        "public": merge_field.public,
        "display_order": merge_field.display_order,
        "options": dict(merge_field.options),
        "help_text": merge_field.help_text,
        "list_id": audience.id,
        "_links": [_link("self", href), _link("parent", f"{api_root(dc)}/lists/{audience.id}/merge-fields")],
    }


def render_tags(tags: list[tuple[Tag, str]]) -> list[dict[str, Any]]:
    return [{"id": tag.id, "name": tag.name, "date_added": added} for tag, added in tags]


def _count(audience: Audience, status: str) -> int:
    return sum(1 for m in audience.members.values() if m.status == status)


def render_list(audience: Audience, dc: str, include_total_contacts: bool = False) -> dict[str, Any]:
    """The Subscriber_List document of one audience, with live member counts."""
    stats: dict[str, Any] = {
        "member_count": _count(audience, "subscribed"),
        "unsubscribe_count": _count(audience, "unsubscribed"),
        "cleaned_count": _count(audience, "cleaned"),
        "member_count_since_send": 0,
        "unsubscribe_count_since_send": 0,
        "cleaned_count_since_send": 0,
        "campaign_count": 0,
        "campaign_last_sent": "",
        "merge_field_count": len(audience.merge_fields),
        "avg_sub_rate": 0,
        "avg_unsub_rate": 0,
        "target_sub_rate": 0,
        "open_rate": 0,
        "click_rate": 0,
        "last_sub_date": "",
        "last_unsub_date": "",
    }
    if include_total_contacts:
        stats["total_contacts"] = len(audience.members)
    href = f"{api_root(dc)}/lists/{audience.id}"
    return {
        "id": audience.id,
        "web_id": audience.web_id,
        "name": audience.name,
        "contact": {
            "company": "ml-connector",
            "address1": "1 Simulation Way",
            "address2": "",
            "city": "Springfield",
            "state": "IL",
            "zip": "62701",
            "country": "US",
            "phone": "",
        },
        "permission_reminder": "You signed up as a customer.",
        "use_archive_bar": False,
        "campaign_defaults": {"from_name": "", "from_email": "", "subject": "", "language": "en"},
        "notify_on_subscribe": "",
        "notify_on_unsubscribe": "",
        "date_created": audience.date_created,
        "list_rating": 0,
        "email_type_option": False,
        "subscribe_url_short": f"http://eepurl.com/{audience.id[:6]}",
        "subscribe_url_long": f"https://{dc}.list-manage.com/subscribe?id={audience.id}",
        "beamer_address": f"{dc}-{audience.id}@inbound.mailchimp.com",
        "visibility": "prv",
        "double_optin": False,
        "has_welcome": False,
        "marketing_permissions": False,
        "modules": [],
        "stats": stats,
        "_links": [_link("self", href), _link("members", f"{href}/members")],
    }


def _tree(paths: list[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path.strip().split("."):
            if not part:
                continue
            node = node.setdefault(part, {})
        node[_LEAF] = True
    return tree


def _include(value: Any, tree: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_include(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, sub in tree.items():
        if key == _LEAF or key not in value:
            continue
        out[key] = value[key] if sub.get(_LEAF) else _include(value[key], sub)
    return out


def _exclude(value: Any, tree: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_exclude(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        sub = tree.get(key)
        if sub is None:
            out[key] = item
        elif not sub.get(_LEAF):
            out[key] = _exclude(item, sub)
    return out


def project(
    doc: dict[str, Any], fields: list[str] | None, exclude_fields: list[str] | None
) -> dict[str, Any]:
    """Keep only ``fields`` and drop ``exclude_fields`` (comma-split, dot paths into objects and arrays)."""
    result: dict[str, Any] = doc
    if fields:
        result = _include(result, _tree(fields))
    if exclude_fields:
        result = _exclude(result, _tree(exclude_fields))
    return result
