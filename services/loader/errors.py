"""What a Mailchimp answer means for a command: success, retry, throttle, or a permanent reason code.

Pure: looks only at the HTTP status, the content type and the problem+json body (or a batch error
item), never at the network. The reason codes are part of the contract: they appear in
``MemberSyncFailed.reason``, in the ``mlc.error.reason`` header of dead letters and in metrics, and
the audit groups failures by them. Keep them stable.

Retrying is decided here once: 429, a 403 *without* a problem+json body (how Mailchimp's throttle
sometimes surfaces), a 503 HTML "Request Blocked" page, other 5xx, timeouts and connection errors are
transient; every other 4xx is a fact about the command that no retry changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

__all__ = [
    "PERMANENT_REASONS",
    "Verdict",
    "batch_error_reason",
    "classify_response",
    "classify_transport",
    "parse_problem",
    "reason_for_message",
]

# Permanent reasons: the command cannot take effect as it is; it is dead-lettered.
INVALID_EMAIL = "invalid_email"
FAKE_EMAIL = "fake_email"
MERGE_FIELDS_INVALID = "merge_fields_invalid"
COMPLIANCE_STATE = "compliance_state"
FORGOTTEN_EMAIL = "forgotten_email"
MEMBER_EXISTS = "member_exists"
CANNOT_ARCHIVE = "cannot_archive"
CANNOT_RENAME = "cannot_rename"
NOT_FOUND = "not_found"
AUTH_FAILED = "auth_failed"
FORBIDDEN = "forbidden"
BAD_REQUEST = "bad_request"
UNKNOWN_AUDIENCE = "unknown_audience"
CREDENTIAL_UNAVAILABLE = "credential_unavailable"
LOADER_ERROR = "loader_error"
# Not permanent: a later replay may succeed.
RETRIES_EXHAUSTED = "retries_exhausted"
SIGNUP_THROTTLED = "signup_throttled"
# Internal: answers the rename step handles itself (they never reach a result event).
ALREADY_IN_LIST = "already_in_list"

PERMANENT_REASONS = (
    INVALID_EMAIL,
    FAKE_EMAIL,
    MERGE_FIELDS_INVALID,
    COMPLIANCE_STATE,
    FORGOTTEN_EMAIL,
    MEMBER_EXISTS,
    CANNOT_ARCHIVE,
    CANNOT_RENAME,
    NOT_FOUND,
    AUTH_FAILED,
    FORBIDDEN,
    BAD_REQUEST,
    UNKNOWN_AUDIENCE,
    CREDENTIAL_UNAVAILABLE,
    LOADER_ERROR,
)

Kind = Literal["ok", "throttle", "transient", "failed"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """How to treat one answer.

    ``throttle`` and ``transient`` are retried in place (``throttle`` also shrinks the local
    connection limit); ``failed`` carries a ``reason`` and whether it is ``permanent``.
    ``cause`` names the transient kind for metrics (``429``, ``403``, ``5xx``, ``timeout``...).
    """

    kind: Kind
    reason: str = ""
    permanent: bool = False
    cause: str = ""

    @property
    def retryable(self) -> bool:
        return self.kind in ("throttle", "transient")


OK = Verdict("ok")


def parse_problem(content_type: str | None, body: bytes) -> dict[str, Any] | None:
    """The problem-details document of an error answer, or None when the body is not one.

    Mailchimp labels problems ``application/problem+json``; a JSON object with a ``title`` or
    ``detail`` under plain ``application/json`` is taken too. HTML pages and empty bodies are None.
    """
    if not body.strip():
        return None
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind not in ("application/problem+json", "application/json"):
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    if kind == "application/json" and "title" not in doc and "detail" not in doc:
        return None
    return doc


def _text(problem: dict[str, Any] | None, name: str) -> str:
    value = (problem or {}).get(name)
    return value if isinstance(value, str) else ""


def _error_fields(problem: dict[str, Any] | None) -> list[str]:
    errors = (problem or {}).get("errors")
    if not isinstance(errors, list):
        return []
    return [str(e.get("field", "")) for e in errors if isinstance(e, dict)]


def reason_for_message(title: str, detail: str, fields: list[str] | None = None) -> str | None:
    """The permanent reason a 400's title/detail describes, or None when it is not recognised.

    Shared by single-member answers and batch error items, which carry the same messages.
    """
    title_l = title.strip().lower()
    detail_l = detail.lower()
    if title_l == "member in compliance state" or "compliance state" in detail_l:
        return COMPLIANCE_STATE
    if title_l == "forgotten email not subscribed" or "was permanently deleted" in detail_l:
        return FORGOTTEN_EMAIL
    if title_l == "member exists" or "is already a list member" in detail_l:
        return MEMBER_EXISTS
    if "is already in this list" in detail_l:
        return ALREADY_IN_LIST
    if "looks fake or invalid" in detail_l:
        return FAKE_EMAIL
    if "provide a valid email address" in detail_l or "email_address" in (fields or []):
        return INVALID_EMAIL
    if "merge fields were invalid" in detail_l:
        return MERGE_FIELDS_INVALID
    if "signed up to a lot of lists" in detail_l:
        return SIGNUP_THROTTLED
    if "you can only update email addresses" in detail_l:
        return CANNOT_RENAME
    return None


def classify_response(status: int, content_type: str | None, problem: dict[str, Any] | None) -> Verdict:
    """Classify one HTTP answer (``problem`` as returned by :func:`parse_problem`)."""
    if 200 <= status < 300:
        return OK
    if status == 429:
        return Verdict("throttle", cause="429")
    if status == 403:
        if problem is None:
            # A bare 403 is the throttle under load, not an authorisation decision.
            return Verdict("throttle", cause="403")
        return Verdict("failed", FORBIDDEN, permanent=True)
    if status >= 500:
        if status == 503 and problem is not None and "compliance" in _text(problem, "title").lower():
            return Verdict("failed", FORBIDDEN, permanent=True)
        kind = (content_type or "").split(";", 1)[0].strip().lower()
        if status == 503 and kind == "text/html":
            # "Request Blocked": Mailchimp shedding suspicious load; slow down like a throttle.
            return Verdict("throttle", cause="503")
        return Verdict("transient", cause="5xx")
    if status == 401:
        return Verdict("failed", AUTH_FAILED, permanent=True)
    if status == 404:
        return Verdict("failed", NOT_FOUND, permanent=True)
    if status == 405:
        # 405 on DELETE is how Mailchimp refuses to archive some members (cleaned ones).
        removable = "cannot be removed" not in _text(problem, "detail")
        return Verdict("failed", BAD_REQUEST if removable else CANNOT_ARCHIVE, permanent=True)
    if status == 408:
        return Verdict("transient", cause="timeout")
    if status == 400:
        reason = reason_for_message(_text(problem, "title"), _text(problem, "detail"), _error_fields(problem))
        if reason == SIGNUP_THROTTLED:
            return Verdict("failed", SIGNUP_THROTTLED, permanent=False)
        return Verdict("failed", reason or BAD_REQUEST, permanent=True)
    return Verdict("failed", BAD_REQUEST, permanent=True)


def classify_transport(kind: Literal["timeout", "connection"]) -> Verdict:
    """A request that got no answer: always worth another attempt."""
    return Verdict("transient", cause=kind)


BatchReason = Literal["contact_exists", "unknown"] | str


def batch_error_reason(item: dict[str, Any]) -> BatchReason:
    """What a batch-subscribe ``errors[]`` item means for its command.

    ``contact_exists``: the address is already a member (we never set ``update_existing``), so the
    command goes through the single-member path, which never touches an existing status.
    ``unknown``: not recognised; the single-member path gets a definitive answer.
    Otherwise a permanent reason code.
    """
    if item.get("error_code") == "ERROR_CONTACT_EXISTS":
        return "contact_exists"
    message = str(item.get("error") or "")
    field = str(item.get("field") or "")
    reason = reason_for_message("", message, [field])
    if reason in (None, ALREADY_IN_LIST, SIGNUP_THROTTLED, CANNOT_RENAME):
        return "unknown"
    if reason == MEMBER_EXISTS:
        return "contact_exists"
    return reason
