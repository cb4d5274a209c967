"""Account- and audience-level endpoints: ping, lists, merge fields and batch subscribe."""

from __future__ import annotations

from simulators.mailchimp import problems
from simulators.mailchimp.batch import batch_subscribe
from simulators.mailchimp.calls import Call, Reply
from simulators.mailchimp.model import MergeField
from simulators.mailchimp.render import api_root, render_list, render_member, render_merge_field
from simulators.mailchimp.validation import check_body, truthy

__all__ = [
    "get_list",
    "get_lists",
    "get_merge_field",
    "get_merge_fields",
    "ping",
    "post_batch",
    "post_merge_field",
]


def ping(call: Call) -> Reply:
    return Reply(200, {"health_status": "Everything's Chimpy!"})


def get_lists(call: Call) -> Reply:
    count, offset = call.page()
    audiences = list(call.store.lists.values())
    include_total = truthy(call.query.get("include_total_contacts"))
    return call.projected(
        {
            "lists": [render_list(a, call.dc, include_total) for a in audiences[offset : offset + count]],
            "total_items": len(audiences),
            "constraints": {
                "may_create": True,
                "max_instances": 100,
                "current_total_instances": len(audiences),
            },
            "_links": [{"rel": "self", "href": f"{api_root(call.dc)}/lists", "method": "GET"}],
        }
    )


def get_list(call: Call) -> Reply:
    include_total = truthy(call.query.get("include_total_contacts"))
    return call.projected(render_list(call.audience(), call.dc, include_total))


def post_batch(call: Call) -> Reply:
    audience = call.audience()
    outcome = batch_subscribe(
        audience, call.body, call.write_context(), truthy(call.query.get("skip_duplicate_check"))
    )
    return Reply(200, outcome.document(render_member, audience, call.dc))


def get_merge_fields(call: Call) -> Reply:
    audience = call.audience()
    count, offset = call.page()
    fields = list(audience.merge_fields.values())
    if call.query.get("type"):
        fields = [f for f in fields if f.type == call.query["type"]]
    if call.query.get("required") is not None:
        fields = [f for f in fields if f.required == truthy(call.query["required"])]
    return call.projected(
        {
            "merge_fields": [
                render_merge_field(f, audience, call.dc) for f in fields[offset : offset + count]
            ],
            "list_id": audience.id,
            "total_items": len(fields),
            "_links": [],
        }
    )


_MERGE_FIELD_TYPES = (
    "text",
    "number",
    "address",
    "phone",
    "date",
    "url",
    "imageurl",
    "radio",
    "dropdown",
    "birthday",
    "zip",
)
_MERGE_FIELD_BODY = {
    "tag": "string",
    "name": "string",
    "type": "string",
    "required": "boolean",
    "default_value": "string",
    "public": "boolean",
    "display_order": "number",
    "options": "object",
    "help_text": "string",
}


def post_merge_field(call: Call) -> Reply:
    audience = call.audience()
    body = check_body(call.body, required=("name", "type"), fields=_MERGE_FIELD_BODY)
    if body["type"] not in _MERGE_FIELD_TYPES:
        raise problems.schema_errors(
            [{"field": "type", "message": f"Value must be one of: {', '.join(_MERGE_FIELD_TYPES)}"}]
        )
    merge_id = audience.next_merge_id()
    tag = (body.get("tag") or f"MMERGE{merge_id}").upper()
    if tag in audience.merge_fields:
        raise problems.invalid_resource(f'A Merge Field with the tag "{tag}" already exists for this list.')
    merge_field = MergeField(
        merge_id,
        tag,
        body["name"],
        body["type"],
        required=body.get("required", False),
        default_value=body.get("default_value", ""),
        public=body.get("public", False),
        display_order=int(body.get("display_order", merge_id + 1)),
        options=dict(body.get("options") or {}),
        help_text=body.get("help_text", ""),
    )
    audience.merge_fields[tag] = merge_field
    return Reply(200, render_merge_field(merge_field, audience, call.dc))


def get_merge_field(call: Call) -> Reply:
    audience = call.audience()
    for merge_field in audience.merge_fields.values():
        if str(merge_field.merge_id) == call.params["merge_id"]:
            return call.projected(render_merge_field(merge_field, audience, call.dc))
    raise problems.resource_not_found()
