"""The OData v4 service as IIS and ASP.NET OData present it: Basic auth, service document, CSDL, entity sets.

Authentication failures come from IIS, not from OData, so they are HTML (or empty) with a Basic challenge;
everything past authentication speaks OData JSON, errors included.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from simulators.syspro.config import SysproSimConfig
from simulators.syspro.odata_syntax import SyntaxProblem
from simulators.syspro.query import QueryEngine, QueryOptions, parse_query_options, render_rows
from simulators.syspro.schema import csdl_document
from simulators.syspro.stats import SimStats
from simulators.syspro.store import CustomerStore

__all__ = ["ODataResult", "ODataService"]

JSON_TYPE = (
    "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"
)
_IIS = {"Server": "Microsoft-IIS/10.0", "X-Powered-By": "ASP.NET"}
_ODATA = {**_IIS, "OData-Version": "4.0"}
_UNAUTHORIZED_HTML = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\r\n'
    '<html xmlns="http://www.w3.org/1999/xhtml">\r\n<head>\r\n'
    '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/>\r\n'
    "<title>401 - Unauthorized: Access is denied due to invalid credentials.</title>\r\n</head>\r\n<body>\r\n"
    '<div id="header"><h1>Server Error</h1></div>\r\n<div id="content">\r\n'
    ' <div class="content-container"><fieldset>\r\n'
    "  <h2>401 - Unauthorized: Access is denied due to invalid credentials.</h2>\r\n"
    "  <h3>You do not have permission to view this directory or page using the credentials that you "
    "supplied.</h3>\r\n </fieldset></div>\r\n</div>\r\n</body>\r\n</html>\r\n"
)
# Characters left unescaped in nextLink query values, as ASP.NET writes them.
_LINK_SAFE = "$'(),:;=@!*/"


@dataclass
class ODataResult:
    """A response plus how many rows it carried (for the counters) and whether it is JSON (for faults)."""

    response: Response
    rows: int = 0
    json: bool = False


def odata_error(status: int, code: str, message: str) -> ODataResult:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return ODataResult(Response(body, status_code=status, media_type=JSON_TYPE, headers=_ODATA), json=True)


def _json(payload: dict[str, Any], rows: int = 0) -> ODataResult:
    return ODataResult(Response(orjson.dumps(payload), media_type=JSON_TYPE, headers=_ODATA), rows, True)


class ODataService:
    """Serves the OData root for one company."""

    def __init__(self, config: SysproSimConfig, store: CustomerStore, stats: SimStats) -> None:
        self.config = config
        self.store = store
        self.stats = stats
        self.customers = QueryEngine(store, config.case_insensitive_collation)
        self.journal = QueryEngine(store.journal, config.case_insensitive_collation)

    def reset_engines(self) -> None:
        """Forget cached results and rebind to the store's current journal table."""
        self.customers = QueryEngine(self.store, self.config.case_insensitive_collation)
        self.journal = QueryEngine(self.store.journal, self.config.case_insensitive_collation)

    # ----- authentication ----------------------------------------------------------------------------

    def authenticate(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = (
                base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return None
        if not sep:
            return None
        operators = {op.upper(): s for op, s in self.config.operators.items()}
        found = operators.get(user.strip().upper())
        if found is None:
            return None
        expected = found.odata_password.get_secret_value()
        if not expected or not secrets.compare_digest(password.encode(), expected.encode()):
            return None
        return user.strip().upper()

    def unauthorized(self, request: Request) -> ODataResult:
        self.stats.auth_failures += 1
        realm = request.headers.get("host", "localhost").split(":")[0]
        headers = {**_IIS, "WWW-Authenticate": f'Basic realm="{realm}"'}
        if self.config.unauthorized_body == "empty":
            return ODataResult(Response(b"", status_code=401, headers=headers))
        return ODataResult(
            Response(_UNAUTHORIZED_HTML, status_code=401, media_type="text/html", headers=headers)
        )

    # ----- routing -----------------------------------------------------------------------------------

    def base_url(self, request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}{self.config.odata_path}"

    async def handle(self, request: Request, subpath: str) -> ODataResult:
        """``subpath`` is what follows the service root, as sent (entity-set names are case-sensitive)."""
        with self.stats.lock:
            self.stats.odata_requests += 1
            number = self.stats.odata_requests
        every = self.config.odata_auth_expire_every
        if every is not None and number % every == 0:
            return self.unauthorized(request)
        if self.authenticate(request) is None:
            return self.unauthorized(request)
        if request.method not in ("GET", "HEAD"):
            return odata_error(405, "MethodNotAllowed", "The SYSPRO OData service is read-only.")
        base = self.base_url(request)
        if subpath in ("", "/"):
            sets = [{"name": name, "kind": "EntitySet", "url": name} for name in self._entity_sets()]
            return _json({"@odata.context": f"{base}/$metadata", "value": sets})
        if subpath == "/$metadata":
            schemas = [self.store.schema] + ([self.store.journal.schema] if self.config.journalling else [])
            body = csdl_document(schemas)
            return ODataResult(Response(body, media_type="application/xml", headers=_ODATA))
        name, _, rest = subpath[1:].partition("(")
        if name.endswith("/$count"):
            return await self._count(request, name[: -len("/$count")])
        if name not in self._entity_sets():
            return odata_error(
                404, "NotFound", f"No HTTP resource was found that matches the request URI '{request.url}'."
            )
        if rest:
            return self._entity(base, name, rest)
        return await self._collection(request, base, name)

    def _entity_sets(self) -> list[str]:
        names = [self.store.schema.name]
        if self.config.journalling:
            names.append(self.store.journal.schema.name)
        return names

    def _engine(self, name: str) -> QueryEngine:
        return self.customers if name == self.store.schema.name else self.journal

    def _refused(self) -> frozenset[str]:
        return frozenset() if self.config.timestamp_filter_allowed else frozenset({"TimeStamp"})

    def _entity(self, base: str, name: str, rest: str) -> ODataResult:
        if name != self.store.schema.name or not rest.endswith(")"):
            return odata_error(400, "BadRequest", f"Bad key segment '({rest}'.")
        literal = rest[:-1]
        if len(literal) < 2 or literal[0] != "'" or literal[-1] != "'":
            return odata_error(
                400, "BadRequest", f"The key value '{literal}' is not a valid Edm.String literal."
            )
        row = self.store.get(literal[1:-1].replace("''", "'"))
        if row is None:
            return odata_error(404, "NotFound", f"No {name} with key {literal}.")
        (item,) = render_rows(self.store.schema, [row], None)
        return _json({"@odata.context": f"{base}/$metadata#{name}/$entity", **item}, rows=1)

    async def _count(self, request: Request, name: str) -> ODataResult:
        if name not in self._entity_sets():
            return odata_error(404, "NotFound", f"No HTTP resource was found that matches '{request.url}'.")
        if not self.config.count_allowed:
            return odata_error(
                400, "BadRequest", "The query specified in the URI is not valid. $count is not allowed."
            )
        params = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k == "$filter"]
        engine = self._engine(name)
        try:
            options = parse_query_options(params, engine.table.schema)
            engine.prepare(options, self._refused())
            page = await run_in_threadpool(engine.run, options, 0, self._refused())
        except SyntaxProblem as exc:
            return odata_error(400, "BadRequest", f"The query specified in the URI is not valid. {exc}")
        return ODataResult(Response(str(page.total), media_type="text/plain", headers=_ODATA))

    async def _collection(self, request: Request, base: str, name: str) -> ODataResult:
        engine = self._engine(name)
        schema = engine.table.schema
        refused = self._refused()
        try:
            options = parse_query_options(parse_qsl(request.url.query, keep_blank_values=True), schema)
            if options.count and not self.config.count_allowed:
                raise SyntaxProblem("The query specified in the URI is not valid. $count is not allowed.")
            engine.prepare(options, refused)
        except SyntaxProblem as exc:
            return odata_error(400, "BadRequest", f"The query specified in the URI is not valid. {exc}")
        return await run_in_threadpool(self._page, base, name, engine, options, refused)

    def _page(
        self, base: str, name: str, engine: QueryEngine, options: QueryOptions, refused: frozenset[str]
    ) -> ODataResult:
        page = engine.run(options, self.config.page_cap, refused)
        schema = engine.table.schema
        selected = f"({','.join(options.select)})" if options.select else ""
        payload: dict[str, Any] = {"@odata.context": f"{base}/$metadata#{name}{selected}"}
        if options.count:
            payload["@odata.count"] = page.total
        payload["value"] = render_rows(schema, page.rows, options.select)
        if page.next_skip is not None and self.config.emit_next_link:
            payload["@odata.nextLink"] = self._next_link(base, name, options, page.next_skip, page.next_top)
        return _json(payload, rows=len(page.rows))

    @staticmethod
    def _next_link(base: str, name: str, options: QueryOptions, skip: int, top: int | None) -> str:
        params = [(k, v) for k, v in options.params if k not in ("$skip", "$top")]
        if top is not None:
            params.append(("$top", str(top)))
        params.append(("$skip", str(skip)))
        query = "&".join(f"{quote(k, safe='$')}={quote(v, safe=_LINK_SAFE)}" for k, v in params)
        return f"{base}/{name}?{query}"
