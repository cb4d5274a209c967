"""Checks Mailchimp applies to a member write before touching the audience.

Three layers, in the order Mailchimp reports them: the JSON schema of the body (types, enums, required
fields), the address itself (syntax, then the "looks fake" heuristics) and the merge fields of the
audience (unknown tags, required values, complete ADDRESS).
"""

from __future__ import annotations

import re
from typing import Any

from simulators.mailchimp import problems
from simulators.mailchimp.config import FakeEmailPatterns
from simulators.mailchimp.model import ADDRESS_KEYS, Address, Audience, address_from_json

__all__ = ["check_body", "checked_email", "merged_values", "missing_required", "truthy"]

_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
_EMAIL_RE = re.compile(rf"^{_LOCAL}@{_DOMAIN}$")
MAX_EMAIL_LENGTH = 255

_ADDRESS_REQUIRED = ("addr1", "city", "state", "zip")

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "number": (int, float),
}
#: JSON type of each member field a write may carry (PUT, POST, PATCH and batch items share them).
MEMBER_FIELDS = {
    "email_address": "string",
    "status_if_new": "string",
    "status": "string",
    "email_type": "string",
    "merge_fields": "object",
    "interests": "object",
    "language": "string",
    "vip": "boolean",
    "location": "object",
    "marketing_permissions": "array",
    "ip_signup": "string",
    "timestamp_signup": "string",
    "ip_opt": "string",
    "timestamp_opt": "string",
    "tags": "array",
}
WRITABLE_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")


def truthy(value: str | None) -> bool:
    """Query booleans: the official SDK sends Python's ``True``; others send ``true`` or ``1``."""
    return value is not None and value.strip().lower() in {"true", "1"}


def json_type(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_error(field: str, expected: str, value: Any) -> dict[str, str]:
    return {"field": field, "message": f"Schema describes {expected}, {json_type(value)} found instead"}


def check_body(
    body: Any,
    statuses: tuple[str, ...] = (),
    required: tuple[str, ...] = (),
    fields: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The body as an object, or Invalid Resource with the schema errors Mailchimp lists in ``errors``.

    ``fields`` maps field names to JSON types (default: the member fields).
    """
    fields = MEMBER_FIELDS if fields is None else fields
    if not isinstance(body, dict):
        raise problems.schema_errors([_type_error("", "object", body)])
    errors: list[dict[str, str]] = []
    missing = [name for name in required if name not in body]
    if missing:
        errors.append({"field": "", "message": f"Required fields were not provided: {', '.join(missing)}"})
    for name in missing:
        if fields.get(name) == "string":
            errors.append(_type_error(name, "string", None))
    for name, expected in fields.items():
        if name not in body:
            continue
        value = body[name]
        python_types = _JSON_TYPES[expected]
        if not isinstance(value, python_types) or (expected == "number" and isinstance(value, bool)):
            errors.append(_type_error(name, expected, value))
        elif name in ("status", "status_if_new") and value not in statuses:
            errors.append({"field": name, "message": f"Value must be one of: {', '.join(statuses)}"})
        elif name == "email_type" and value not in ("html", "text"):
            errors.append({"field": name, "message": "Value must be one of: html, text"})
    interests = body.get("interests")
    if isinstance(interests, dict):
        errors.extend(
            _type_error(f"interests.{key}", "boolean", flag)
            for key, flag in interests.items()
            if not isinstance(flag, bool)
        )
    location = body.get("location")
    if isinstance(location, dict):
        errors.extend(
            _type_error(f"location.{key}", "number", location[key])
            for key in ("latitude", "longitude")
            if key in location and json_type(location[key]) not in ("integer", "number")
        )
    if errors:
        raise problems.schema_errors(errors)
    return body


def checked_email(raw: str, fake: FakeEmailPatterns) -> str:
    """The trimmed address, or the Invalid Resource answer Mailchimp gives for a bad or fake one."""
    email = raw.strip()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL_RE.match(email):
        raise problems.invalid_email()
    if fake.matches(email):
        raise problems.looks_fake(email)
    return email


def _address(value: Any, skip: bool) -> tuple[Address | None, str | None]:
    if not isinstance(value, dict):
        return None, "Please enter a complete address"
    address = address_from_json(value)
    if not skip and any(
        not part for key, part in zip(ADDRESS_KEYS, address, strict=True) if key in _ADDRESS_REQUIRED
    ):
        return None, "Please enter a complete address"
    return address, None


def _scalar(field_type: str, value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool | dict | list):
        return None, f"Schema describes string, {json_type(value)} found instead"
    if field_type == "number":
        if isinstance(value, int | float):
            return value, None
        try:
            float(value)
        except ValueError:
            return None, "Please enter a number"
        return value, None
    return str(value), None


def merged_values(
    audience: Audience, incoming: Any, current: dict[str, Any], creating: bool, skip: bool
) -> dict[str, Any]:
    """The member's merge values after applying ``incoming``; ``""`` (or null) clears a value.

    Required fields are checked on creation, and on update only when the write empties them, so a partial
    update never fails for a field it does not mention. ``skip`` (skip_merge_validation) waives required
    values, including the required parts of an address.
    """
    if incoming is None:
        incoming = {}
    result = dict(current)
    errors: list[dict[str, str]] = []
    for tag, value in incoming.items():
        merge_field = audience.merge_field(tag)
        if merge_field is None:
            errors.append({"field": tag, "message": f"The merge field {tag} does not exist on this list."})
            continue
        if value is None or value == "":
            result.pop(merge_field.tag, None)
            if merge_field.required and not creating and not skip:
                errors.append({"field": merge_field.tag, "message": "Please enter a value"})
            continue
        if merge_field.type == "address":
            stored, message = _address(value, skip)
        else:
            stored, message = _scalar(merge_field.type, value)
        if message is not None:
            errors.append({"field": merge_field.tag, "message": message})
        else:
            result[merge_field.tag] = stored
    if creating and not skip:
        errors.extend(missing_required(audience, result, already=errors))
    if errors:
        raise problems.merge_fields_invalid(errors)
    return result


def missing_required(
    audience: Audience, values: dict[str, Any], already: list[dict[str, str]] | None = None
) -> list[dict[str, str]]:
    reported = {error["field"] for error in already or []}
    return [
        {
            "field": tag,
            "message": "Please enter a complete address"
            if merge_field.type == "address"
            else "Please enter a value",
        }
        for tag, merge_field in audience.merge_fields.items()
        if merge_field.required and tag not in values and tag not in reported
    ]
