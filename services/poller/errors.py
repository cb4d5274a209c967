"""Why SYSPRO could not be read. Each error's ``reason`` is the stable code published in ``PollRunFailed``
and counted in ``mlc_poller_errors_total``; messages never carry secrets."""

from __future__ import annotations

__all__ = [
    "AuthRefused",
    "BadResponse",
    "CredentialUnavailable",
    "QueryRejected",
    "SchemaMismatch",
    "ServerError",
    "SysproError",
    "Unreachable",
]


class SysproError(Exception):
    """SYSPRO could not be read. ``reason`` is the stable code used in ``PollRunFailed`` and metrics."""

    reason = "syspro_error"


class AuthRefused(SysproError):
    reason = "auth_refused"


class Unreachable(SysproError):
    reason = "unreachable"


class ServerError(SysproError):
    reason = "server_error"


class BadResponse(SysproError):
    reason = "bad_response"


class QueryRejected(SysproError):
    reason = "query_rejected"


class CredentialUnavailable(SysproError):
    """The credential store has no usable credential for the connection."""

    reason = "credential_unavailable"


class SchemaMismatch(SysproError):
    """The service does not offer what the connection is configured to read (fails start-up)."""

    reason = "schema_mismatch"
