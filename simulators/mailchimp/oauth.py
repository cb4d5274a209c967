"""The slice of ``login.mailchimp.com`` an OAuth client needs: authorize, token exchange, metadata.

``api_endpoint`` in the metadata points back at this simulator (``http://<host>/<dc>``), so a client that
appends ``/3.0`` as the real flow does lands on the simulated data center of its token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from simulators.mailchimp.auth import oauth_token_from

if TYPE_CHECKING:
    from simulators.mailchimp.simulator import MailchimpSimulator

__all__ = ["oauth_routes"]


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def oauth_routes(sim: MailchimpSimulator) -> list[Route]:
    """Routes under ``/oauth2`` bound to ``sim``."""

    async def authorize(request: Request) -> Response:
        query = request.query_params
        redirect_uri = query.get("redirect_uri")
        if query.get("response_type") != "code" or not redirect_uri:
            return _oauth_error(400, "invalid_request", "response_type=code and redirect_uri are required")
        if sim.config.oauth_client_id is not None and query.get("client_id") != sim.config.oauth_client_id:
            return _oauth_error(400, "invalid_client", "unknown client_id")
        params = {"code": sim.issue_oauth_code()}
        if query.get("state") is not None:
            params["state"] = query["state"]
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", status_code=302)

    async def token(request: Request) -> Response:
        # Form-encoded per OAuth 2; parsed here to avoid a multipart dependency for one flat form.
        form = {name: values[0] for name, values in parse_qs((await request.body()).decode("utf-8")).items()}
        if form.get("grant_type") != "authorization_code":
            return _oauth_error(400, "unsupported_grant_type", "only authorization_code is supported")
        config = sim.config
        if config.oauth_client_id is not None and (
            form.get("client_id") != config.oauth_client_id
            or form.get("client_secret") != config.oauth_client_secret
        ):
            return _oauth_error(401, "invalid_client", "client authentication failed")
        access_token = sim.exchange_oauth_code(form.get("code", ""))
        if access_token is None:
            return _oauth_error(400, "invalid_grant", "the code is unknown or was already used")
        # Tokens never expire and carry no scope.
        return JSONResponse({"access_token": access_token, "expires_in": 0, "scope": None})

    async def metadata(request: Request) -> Response:
        token = oauth_token_from(request.headers.get("authorization", ""), "OAuth")
        dc = sim.oauth_tokens.get(token) if token else None
        if token is None or dc is None:
            return _oauth_error(401, "invalid_token", "send Authorization: OAuth <access token>")
        base = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
        config = sim.config
        return JSONResponse(
            {
                "dc": dc,
                "role": "owner",
                "accountname": config.account_name,
                "user_id": "99000001",
                "login": {
                    "email": config.login_email,
                    "avatar": None,
                    "login_id": "88000001",
                    "login_name": config.login_email,
                    "login_email": config.login_email,
                },
                "login_url": base,
                "api_endpoint": f"{base}/{dc}",
            }
        )

    return [
        Route("/oauth2/authorize", authorize, methods=["GET"]),
        Route("/oauth2/token", token, methods=["POST"]),
        Route("/oauth2/metadata", metadata, methods=["GET"]),
    ]
