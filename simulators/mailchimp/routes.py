"""The route table of ``/3.0``: path pattern, method, endpoint kind (for latency, stats and queued
faults) and handler."""

from __future__ import annotations

import re
from collections.abc import Callable

from simulators.mailchimp import problems
from simulators.mailchimp.calls import Call, Reply
from simulators.mailchimp.list_endpoints import (
    get_list,
    get_lists,
    get_merge_field,
    get_merge_fields,
    ping,
    post_batch,
    post_merge_field,
)
from simulators.mailchimp.member_endpoints import (
    delete_forever,
    delete_one,
    get_member,
    get_members,
    get_tags,
    patch_one,
    post_members,
    post_tags,
    put_one,
)

__all__ = ["Handler", "match_route"]

Handler = Callable[[Call], Reply]

_SEGMENT = r"(?P<{}>[^/]+)"
_ROUTES: list[tuple[str, dict[str, tuple[str, Handler]]]] = [
    (r"/ping", {"GET": ("ping", ping)}),
    (r"/lists", {"GET": ("lists", get_lists)}),
    (r"/lists/{list_id}", {"GET": ("lists", get_list), "POST": ("batch_members", post_batch)}),
    (
        r"/lists/{list_id}/merge-fields",
        {"GET": ("merge_fields", get_merge_fields), "POST": ("merge_fields", post_merge_field)},
    ),
    (r"/lists/{list_id}/merge-fields/{merge_id}", {"GET": ("merge_fields", get_merge_field)}),
    (
        r"/lists/{list_id}/members",
        {"GET": ("member_list", get_members), "POST": ("member_post", post_members)},
    ),
    (
        r"/lists/{list_id}/members/{subscriber_hash}",
        {
            "GET": ("member_get", get_member),
            "PUT": ("member_put", put_one),
            "PATCH": ("member_patch", patch_one),
            "DELETE": ("member_delete", delete_one),
        },
    ),
    (
        r"/lists/{list_id}/members/{subscriber_hash}/tags",
        {"GET": ("tags", get_tags), "POST": ("tags", post_tags)},
    ),
    (
        r"/lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent",
        {"POST": ("member_delete_permanent", delete_forever)},
    ),
]
_COMPILED = [
    (re.compile("^" + re.sub(r"\{(\w+)\}", lambda m: _SEGMENT.format(m.group(1)), path) + "/?$"), methods)
    for path, methods in _ROUTES
]


def match_route(method: str, path: str) -> tuple[str, Handler | problems.MailchimpProblem, dict[str, str]]:
    """``(kind, handler, path params)``; the handler is a problem for unknown paths (404) or methods (405)."""
    for pattern, methods in _COMPILED:
        found = pattern.match(path)
        if found is None:
            continue
        entry = methods.get(method)
        if entry is None:
            kind = next(iter(methods.values()))[0]
            return kind, problems.method_not_allowed(sorted(methods)), found.groupdict()
        return entry[0], entry[1], found.groupdict()
    return "default", problems.resource_not_found(), {}
