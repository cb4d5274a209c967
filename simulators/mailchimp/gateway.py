"""The front door of ``/3.0`` calls: data-center routing, authentication, the per-key connection limit,
injected latency and faults, then the handler, then the response, with every call counted.

A raw ASGI handler rather than framework middleware, so the connection slot is held from the moment
the request is accepted until its response has been written, which is what the real limit counts.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson
from starlette.datastructures import Headers, QueryParams

from simulators.mailchimp import problems
from simulators.mailchimp.auth import authenticate, host_dc
from simulators.mailchimp.calls import Call, Reply
from simulators.mailchimp.model import now_iso
from simulators.mailchimp.routes import match_route

if TYPE_CHECKING:
    from simulators.mailchimp.simulator import MailchimpSimulator

__all__ = ["ApiGateway", "ConnectionDropped"]

_log = logging.getLogger(__name__)

JSON = b"application/json; charset=utf-8"
PROBLEM_JSON = b"application/problem+json; charset=utf-8"
_BLOCKED_PAGE = (
    b"<!DOCTYPE html><html><head><title>Request Blocked</title></head><body><h1>Request Blocked</h1>"
    b"<p>Your request has been blocked.</p></body></html>"
)
_GATEWAY_TIMEOUT_PAGE = (
    b"<html><head><title>504 Gateway Time-out</title></head><body><h1>504 Gateway Time-out</h1></body></html>"
)

_WRITE_KINDS = frozenset({"batch_members", "member_put", "member_post", "member_patch"})

Send = Any
Receive = Any


class ConnectionDropped(Exception):
    """Raised after the response head is written so the server closes the connection mid-response."""


class _QuietDrops(logging.Filter):
    """Keep intentional drops out of uvicorn's error log; real errors still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


def install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    if status != 204:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if status == 204 else body})


def _problem_parts(
    problem: problems.MailchimpProblem, request_id: str, dc: str
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    headers = [
        (b"content-type", PROBLEM_JSON),
        (b"x-request-id", request_id.encode()),
        (
            b"link",
            f"<https://{dc}.api.mailchimp.com/schema/3.0/Definitions/ProblemDetailDocument.json>; "
            'rel="describedBy"'.encode(),
        ),
    ]
    headers.extend((name.lower().encode(), value.encode()) for name, value in problem.headers.items())
    return orjson.dumps(problem.body(request_id)), headers


class ApiGateway:
    """Serves one ``/3.0`` request for the simulator it belongs to."""

    def __init__(self, simulator: MailchimpSimulator) -> None:
        self._sim = simulator

    async def handle(
        self, scope: dict[str, Any], receive: Receive, send: Send, path_dc: str | None, path: str
    ) -> None:
        sim = self._sim
        started = time.perf_counter()
        method = scope["method"]
        headers = Headers(scope=scope)
        dc = path_dc or host_dc(headers.get("host")) or sim.config.default_dc
        request_id = str(uuid.uuid4())
        kind, handler, params = match_route(method, path)
        entry: dict[str, Any] = {"method": method, "path": scope["path"], "kind": kind, "credential": None}
        status = 500
        try:
            try:
                credential = authenticate(headers, dc, sim.config, sim.oauth_tokens)
            except problems.MailchimpProblem as problem:
                status = await self._problem(send, problem, request_id, dc)
                return
            label = entry["credential"] = credential.label
            faults = sim.faults
            with sim.lock:
                admitted = sim.stats_collector.try_acquire(label, faults.max_connections)
            if not admitted:
                status = await self._throttle(send, faults.throttle_mode, request_id, dc)
                return
            try:
                status = await self._admitted(scope, receive, send, kind, handler, params, dc, request_id)
            except ConnectionDropped:
                status = 0  # recorded as status "0": the client got no complete answer
                raise
            finally:
                with sim.lock:
                    sim.stats_collector.release(label)
        finally:
            entry["status"] = status
            entry["ms"] = round((time.perf_counter() - started) * 1000, 3)
            entry["at"] = now_iso()
            with sim.lock:
                sim.stats_collector.record(entry)

    async def _admitted(
        self,
        scope: dict[str, Any],
        receive: Receive,
        send: Send,
        kind: str,
        handler: Any,
        params: dict[str, str],
        dc: str,
        request_id: str,
    ) -> int:
        sim = self._sim
        raw = await _read_body(receive)
        body: Any = None
        parse_error: problems.MailchimpProblem | None = None
        if raw.strip():
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                parse_error = problems.json_parse_error()
        elif scope["method"] in ("POST", "PUT", "PATCH"):
            body = {}
        faults = sim.faults
        fault = sim.draw_fault(kind)
        batch = body.get("members") if kind == "batch_members" and isinstance(body, dict) else None
        delay = faults.latency_for(kind, len(batch) if isinstance(batch, list) else 0)
        if delay > 0:
            await asyncio.sleep(delay)
        if fault == "timeout":
            return await self._timeout(send, faults.timeout_seconds, faults.timeout_mode)
        if fault in ("429", "403", "503"):
            return await self._throttle(send, fault, request_id, dc)
        if fault == "500":
            return await self._problem(send, problems.internal_error(), request_id, dc)
        if isinstance(handler, problems.MailchimpProblem):
            return await self._problem(send, handler, request_id, dc)
        if parse_error is not None:
            return await self._problem(send, parse_error, request_id, dc)
        client = scope.get("client")
        call = Call(
            sim.store,
            sim.config,
            dc,
            params,
            QueryParams(scope["query_string"]),
            body,
            now_iso(),
            client[0] if client else "",
        )
        try:
            with sim.lock:
                reply: Reply = handler(call)
        except problems.MailchimpProblem as problem:
            return await self._problem(send, problem, request_id, dc)
        except Exception:
            _log.exception("simulator handler failed for %s %s", scope["method"], scope["path"])
            return await self._problem(send, problems.internal_error(), request_id, dc)
        if kind in _WRITE_KINDS:
            sim.after_write()
        headers = [(b"content-type", JSON), (b"x-request-id", request_id.encode())]
        headers.extend((name.lower().encode(), value.encode()) for name, value in reply.headers.items())
        payload = b"" if reply.doc is None else orjson.dumps(reply.doc)
        await _send(send, reply.status, payload, headers)
        return reply.status

    async def _problem(self, send: Send, problem: problems.MailchimpProblem, request_id: str, dc: str) -> int:
        body, headers = _problem_parts(problem, request_id, dc)
        await _send(send, problem.status, body, headers)
        return problem.status

    async def _throttle(self, send: Send, surface: str, request_id: str, dc: str) -> int:
        faults = self._sim.faults
        if surface == "403":
            # The bare variant: no body, no content type, nothing that says "throttled".
            await _send(send, 403, b"", [])
            return 403
        if surface == "503":
            await _send(send, 503, _BLOCKED_PAGE, [(b"content-type", b"text/html; charset=utf-8")])
            return 503
        problem = problems.too_many_requests(faults.max_connections, faults.retry_after_seconds)
        return await self._problem(send, problem, request_id, dc)

    async def _timeout(self, send: Send, seconds: float, mode: str) -> int:
        # The connection stays open (and counted) the whole time, as the reference warns it may.
        await asyncio.sleep(seconds)
        if mode == "drop":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", JSON), (b"content-length", b"1024")],
                }
            )
            raise ConnectionDropped
        await _send(send, 504, _GATEWAY_TIMEOUT_PAGE, [(b"content-type", b"text/html; charset=utf-8")])
        return 504
