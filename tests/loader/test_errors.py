"""Classifying Mailchimp answers: what is retried, what throttles, and which reason a failure gets."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.loader.errors import (
    Verdict,
    batch_error_reason,
    classify_response,
    classify_transport,
    parse_problem,
)

PROBLEM = "application/problem+json; charset=utf-8"
TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"


def problem(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": TYPE, "title": title, "status": status, "detail": detail, "instance": "abc", **extra}


def classify(status: int, doc: dict[str, Any] | None, content_type: str | None = PROBLEM) -> Verdict:
    body = orjson.dumps(doc) if doc is not None else b""
    return classify_response(status, content_type, parse_problem(content_type, body))


@pytest.mark.parametrize(
    ("status", "title", "detail", "errors", "reason"),
    [
        (400, "Invalid Resource", "Please provide a valid email address.", None, "invalid_email"),
        (
            400,
            "Invalid Resource",
            "x@mailinator.com looks fake or invalid, please enter a real email address.",
            None,
            "fake_email",
        ),
        (
            400,
            "Invalid Resource",
            "Your merge fields were invalid.",
            [{"field": "ADDRESS", "message": "Please enter a complete address"}],
            "merge_fields_invalid",
        ),
        (
            400,
            "Member In Compliance State",
            "a@b.co is in a compliance state due to unsubscribe, bounce, or "
            "compliance review and cannot be subscribed.",
            None,
            "compliance_state",
        ),
        (
            400,
            "Forgotten Email Not Subscribed",
            "a@b.co was permanently deleted and cannot be re-imported.",
            None,
            "forgotten_email",
        ),
        (
            400,
            "Member Exists",
            "a@b.co is already a list member. Use PUT to insert or update list members.",
            None,
            "member_exists",
        ),
        (
            400,
            "Invalid Resource",
            "The resource submitted could not be validated. For field-specific details, "
            "see the 'errors' array.",
            [{"field": "email_address", "message": "Schema describes string"}],
            "invalid_email",
        ),
        (400, "JSON Parse Error", "We encountered an unspecified JSON parsing error.", None, "bad_request"),
        (
            401,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            None,
            "auth_failed",
        ),
        (403, "Forbidden", "You are not permitted to access this resource.", None, "forbidden"),
        (403, "User Disabled", "This account has been disabled.", None, "forbidden"),
        (404, "Resource Not Found", "The requested resource could not be found.", None, "not_found"),
        (
            405,
            "Method Not Allowed",
            "This list member cannot be removed.  Please contact support.",
            None,
            "cannot_archive",
        ),
        (
            422,
            "Invalid Method Override",
            "You can only use the X-HTTP-Method-Override header with POST.",
            None,
            "bad_request",
        ),
    ],
)
def test_permanent_answers_get_their_reason_code(
    status: int, title: str, detail: str, errors: list[dict[str, str]] | None, reason: str
) -> None:
    extra = {"errors": errors} if errors is not None else {}
    verdict = classify(status, problem(status, title, detail, **extra))
    assert (verdict.kind, verdict.reason, verdict.permanent, verdict.retryable) == (
        "failed",
        reason,
        True,
        False,
    )


def test_rename_onto_an_existing_address_is_recognised_for_the_rename_step() -> None:
    detail = '"b@c.co" is already in this list with a status of "subscribed".'
    assert classify(400, problem(400, "Invalid Resource", detail)).reason == "already_in_list"


def test_signup_rate_abuse_is_a_failure_that_is_not_permanent() -> None:
    detail = "a@b.co has signed up to a lot of lists very recently; we're not allowing more signups for now"
    verdict = classify(400, problem(400, "Invalid Resource", detail))
    assert (verdict.kind, verdict.reason, verdict.permanent) == ("failed", "signup_throttled", False)


def test_429_is_a_throttle() -> None:
    verdict = classify(
        429, problem(429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections.")
    )
    assert (verdict.kind, verdict.cause, verdict.retryable) == ("throttle", "429", True)


def test_a_bare_403_is_a_throttle_but_a_403_problem_is_permanent() -> None:
    assert classify(403, None, None) == Verdict("throttle", cause="403")
    assert classify(403, problem(403, "Forbidden", "no")).permanent


def test_a_request_blocked_html_page_is_a_throttle() -> None:
    page = b"<html><title>Request Blocked</title></html>"
    verdict = classify_response(503, "text/html; charset=utf-8", parse_problem("text/html", page))
    assert (verdict.kind, verdict.cause) == ("throttle", "503")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(status: int) -> None:
    assert classify(status, problem(status, "Internal Server Error", "oops")).kind == "transient"


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_error_pages_are_transient(status: int) -> None:
    assert classify_response(status, "text/html", None).kind == "transient"


def test_timeouts_and_connection_errors_are_transient() -> None:
    assert classify_transport("timeout") == Verdict("transient", cause="timeout")
    assert classify_transport("connection").retryable


def test_success_is_ok() -> None:
    assert classify(200, {"id": "x"}, "application/json; charset=utf-8").kind == "ok"
    assert classify(204, None, "application/json; charset=utf-8").kind == "ok"


def test_parse_problem_ignores_html_empty_bodies_and_non_problem_json() -> None:
    assert parse_problem("text/html", b"<html/>") is None
    assert parse_problem(PROBLEM, b"") is None
    assert parse_problem("application/json", b'{"id": 1}') is None
    assert parse_problem(PROBLEM, b"[1]") is None
    assert parse_problem("application/json", b'{"title": "x"}') == {"title": "x"}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            {
                "error_code": "ERROR_CONTACT_EXISTS",
                "error": "a@b.co is already a list member, do you want to "
                "update? please provide update_existing:true in the request body",
            },
            "contact_exists",
        ),
        ({"error_code": "ERROR_GENERIC", "error": "Please provide a valid email address."}, "invalid_email"),
        (
            {
                "error_code": "ERROR_GENERIC",
                "error": "a@mailinator.com looks fake or invalid, please enter a real email address.",
            },
            "fake_email",
        ),
        (
            {
                "error_code": "ERROR_GENERIC",
                "error": "Your merge fields were invalid.",
                "field": "ADDRESS",
                "field_message": "Please enter a complete address",
            },
            "merge_fields_invalid",
        ),
        (
            {"error_code": "ERROR_GENERIC", "error": "a@b.co is in a compliance state due to unsubscribe"},
            "compliance_state",
        ),
        (
            {
                "error_code": "ERROR_GENERIC",
                "error": "a@b.co was permanently deleted and cannot be re-imported.",
            },
            "forgotten_email",
        ),
        ({"error_code": "ERROR_GENERIC", "error": "Something nobody has seen before"}, "unknown"),
        (
            {"error_code": "ERROR_GENERIC", "error": "a@b.co was included more than once in this batch."},
            "unknown",
        ),
    ],
)
def test_batch_error_items_map_to_the_same_reasons(item: dict[str, Any], expected: str) -> None:
    assert batch_error_reason({"email_address": "a@b.co", **item}) == expected
