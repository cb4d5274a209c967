"""Log lines are JSON objects and secrets are masked on the way out."""

from __future__ import annotations

import json
import logging

import pytest

from shared.logging import JsonFormatter, redact


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET /Rest/Logon?Operator=ADMIN&OperatorPassword=hunter22&CompanyId=EDU1", "hunter22"),
        ("Authorization: Basic dXNlcjpodW50ZXIyMg==", "dXNlcjpodW50ZXIyMg=="),
        ("Authorization: Bearer 5c6ccc561059aa386da9d112215bae55", "5c6ccc561059aa386da9d112215bae55"),
        ("calling with key 0123456789abcdef0123456789abcdef-us6", "0123456789abcdef0123456789abcdef-us6"),
        ('{"password": "hunter22", "user": "x"}', "hunter22"),
        ("https://op:hunter22@syspro.example/odata", "hunter22"),
    ],
)
def test_secrets_are_masked(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_a_record_becomes_one_json_object_with_its_extra_fields() -> None:
    record = logging.LogRecord("mlc.test", logging.INFO, __file__, 1, "polled %d rows", (12,), None)
    record.connection = "acme"
    line = JsonFormatter("poller").format(record)
    obj = json.loads(line)
    assert obj["msg"] == "polled 12 rows"
    assert obj["service"] == "poller" and obj["connection"] == "acme" and obj["level"] == "info"
