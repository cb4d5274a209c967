"""Mailchimp's error answers: problem details with the titles and messages real clients see.

Handlers raise :class:`MailchimpProblem`; the gateway renders it as ``application/problem+json`` with
``instance`` equal to the ``X-Request-Id`` header. Keeping every message here makes the wording one fact
with one home, shared by single-member calls and batch error items.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ERRORS_TYPE",
    "MailchimpProblem",
    "already_in_list",
    "api_key_disabled",
    "api_key_invalid",
    "api_key_missing",
    "cleaned_email_change",
    "compliance_state",
    "forgotten_email",
    "internal_error",
    "invalid_email",
    "invalid_resource",
    "json_parse_error",
    "looks_fake",
    "member_exists",
    "merge_fields_invalid",
    "method_not_allowed",
    "not_removable",
    "resource_not_found",
    "schema_errors",
    "too_many_requests",
]

ERRORS_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"
_VALIDATION_DETAIL = (
    "The resource submitted could not be validated. For field-specific details, see the 'errors' array."
)


class MailchimpProblem(Exception):
    """An error answer: HTTP status, readable title, detail, optional ``errors[]`` and extra headers."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}

    def body(self, instance: str) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": ERRORS_TYPE,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if self.errors is not None:
            doc["errors"] = self.errors
        return doc


def invalid_resource(detail: str, errors: list[dict[str, str]] | None = None) -> MailchimpProblem:
    return MailchimpProblem(400, "Invalid Resource", detail, errors)


def schema_errors(errors: list[dict[str, str]]) -> MailchimpProblem:
    """Body failed the JSON schema (wrong type, missing required field, value outside an enum)."""
    return invalid_resource(_VALIDATION_DETAIL, errors)


def invalid_email() -> MailchimpProblem:
    return invalid_resource("Please provide a valid email address.")


def looks_fake(email: str) -> MailchimpProblem:
    return invalid_resource(f"{email} looks fake or invalid, please enter a real email address.")


def merge_fields_invalid(errors: list[dict[str, str]]) -> MailchimpProblem:
    return invalid_resource("Your merge fields were invalid.", errors)


def already_in_list(email: str, status: str) -> MailchimpProblem:
    return invalid_resource(f'"{email}" is already in this list with a status of "{status}".')


def cleaned_email_change() -> MailchimpProblem:
    return invalid_resource(
        'This member\'s status is "cleaned." You can only update email addresses for members with a '
        'status of "subscribed."'
    )


def member_exists(email: str) -> MailchimpProblem:
    return MailchimpProblem(
        400, "Member Exists", f"{email} is already a list member. Use PUT to insert or update list members."
    )


def compliance_state(email: str) -> MailchimpProblem:
    return MailchimpProblem(
        400,
        "Member In Compliance State",
        f"{email} is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be "
        "subscribed.",
    )


def forgotten_email(email: str) -> MailchimpProblem:
    return MailchimpProblem(
        400,
        "Forgotten Email Not Subscribed",
        f"{email} was permanently deleted and cannot be re-imported. The contact must re-subscribe to get "
        "back on the list.",
    )


def json_parse_error() -> MailchimpProblem:
    return MailchimpProblem(400, "JSON Parse Error", "We encountered an unspecified JSON parsing error.")


def api_key_missing() -> MailchimpProblem:
    return MailchimpProblem(401, "API Key Missing", "Your request did not include an API key.")


def api_key_invalid() -> MailchimpProblem:
    return MailchimpProblem(
        401,
        "API Key Invalid",
        "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
    )


def api_key_disabled() -> MailchimpProblem:
    return MailchimpProblem(401, "API Key Invalid", "API key has been disabled")


def resource_not_found() -> MailchimpProblem:
    return MailchimpProblem(404, "Resource Not Found", "The requested resource could not be found.")


def method_not_allowed(allow: list[str]) -> MailchimpProblem:
    return MailchimpProblem(
        405,
        "Method Not Allowed",
        "The requested method and resource are not compatible. See the Allow header for this resource's "
        "available methods.",
        headers={"Allow": ", ".join(allow)},
    )


def not_removable() -> MailchimpProblem:
    # Two spaces after the first sentence, as the real API answers.
    return MailchimpProblem(
        405,
        "Method Not Allowed",
        "This list member cannot be removed.  Please contact support.",
        headers={"Allow": "GET, PUT"},
    )


def too_many_requests(limit: int, retry_after: int | None) -> MailchimpProblem:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return MailchimpProblem(
        429,
        "Too Many Requests",
        f"You have exceeded the limit of {limit} simultaneous connections.",
        headers=headers,
    )


def internal_error() -> MailchimpProblem:
    return MailchimpProblem(500, "Internal Server Error", "An unexpected internal error has occurred.")
