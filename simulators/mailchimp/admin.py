"""Test control over HTTP (``/_admin``), clearly not part of Mailchimp's API.

Everything here calls the same Python methods tests use in-process, so a demo or a benchmark in another
process can seed audiences, play the contact (unsubscribe, bounce), inject faults and read counters.
No authentication: the simulator is a local test tool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from simulators.mailchimp.simulator import MailchimpSimulator

__all__ = ["admin_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]


def _json(doc: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    doc = orjson.loads(raw)
    if not isinstance(doc, dict):
        raise ValueError("expected a JSON object")
    return doc


def _guarded(endpoint: Endpoint) -> Endpoint:
    """Unknown lists/members become 404, bad input 400, both as ``{"error": ...}``."""

    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except KeyError as exc:
            return _json({"error": f"not found: {exc.args[0] if exc.args else ''}"}, 404)
        except ValidationError as exc:
            return _json({"error": exc.errors(include_input=False, include_url=False)}, 400)
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            return _json({"error": str(exc)}, 400)

    return run


def admin_routes(sim: MailchimpSimulator) -> list[Route]:
    """Routes under ``/_admin`` bound to ``sim``."""

    async def lists(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            list_id = sim.create_list(
                list_id=body.get("list_id"),
                name=body.get("name", "Simulated audience"),
                merge_fields=body.get("merge_fields"),
                required_merge_fields=body.get("required_merge_fields", ()),
            )
            return _json({"id": list_id}, 201)
        return _json({"lists": sim.list_summaries()})

    async def members(request: Request) -> Response:
        list_id = request.path_params["list_id"]
        if request.method == "POST":
            body = await _body(request)
            email = body.pop("email_address")
            return _json(sim.seed_member(list_id, email, **body), 201)
        return _json({"members": sim.members(list_id), "forgotten_count": sim.forgotten_count(list_id)})

    async def member(request: Request) -> Response:
        found = sim.member(request.path_params["list_id"], request.path_params["member"])
        if found is None:
            raise KeyError(request.path_params["member"])
        return _json(found)

    async def member_action(request: Request) -> Response:
        list_id, key, action = (request.path_params[k] for k in ("list_id", "member", "action"))
        body = await _body(request)
        if action == "unsubscribe":
            origin = body.get("origin", "contact")
            if origin == "contact":
                return _json(sim.unsubscribe_by_contact(list_id, key))
            if origin == "admin":
                return _json(sim.unsubscribe_by_admin(list_id, key))
            raise ValueError("origin is 'contact' or 'admin'")
        if action == "clean":
            return _json(sim.clean(list_id, key))
        if action == "compliance":
            return _json(sim.set_compliance(list_id, key, bool(body.get("under_review", True))))
        raise KeyError(action)

    async def faults(request: Request) -> Response:
        if request.method in ("PUT", "PATCH"):
            sim.set_faults(**await _body(request))
        return _json(sim.faults.model_dump())

    async def stats(request: Request) -> Response:
        return _json(sim.stats.model_dump())

    async def stats_reset(request: Request) -> Response:
        sim.reset_stats()
        return _json(sim.stats.model_dump())

    async def requests(request: Request) -> Response:
        limit = int(request.query_params.get("limit", "1000"))
        return _json({"requests": sim.request_log(limit)})

    base = "/_admin"
    return [
        Route(f"{base}/lists", _guarded(lists), methods=["GET", "POST"]),
        Route(f"{base}/lists/{{list_id}}/members", _guarded(members), methods=["GET", "POST"]),
        Route(f"{base}/lists/{{list_id}}/members/{{member}}", _guarded(member), methods=["GET"]),
        Route(
            f"{base}/lists/{{list_id}}/members/{{member}}/{{action}}",
            _guarded(member_action),
            methods=["POST"],
        ),
        Route(f"{base}/faults", _guarded(faults), methods=["GET", "PUT", "PATCH"]),
        Route(f"{base}/stats", _guarded(stats), methods=["GET"]),
        Route(f"{base}/stats/reset", _guarded(stats_reset), methods=["POST"]),
        Route(f"{base}/requests", _guarded(requests), methods=["GET"]),
    ]
