"""Reading the customer's address from SYSPRO's Email column."""

from __future__ import annotations

import hashlib

import pytest

from services.mapper.email_identity import (
    EmailIdentity,
    EmailProblem,
    is_valid_email,
    read_email,
    subscriber_hash,
)
from shared.connections import EmailRules

FIRST_VALID = EmailRules()
REJECT_MULTIPLE = EmailRules(multiple="reject")


def test_the_subscriber_hash_is_mailchimps_documented_example() -> None:
    assert subscriber_hash("Urist.McVankab@freddiesjokes.com") == "62eeb292278cc15f5817cb78f7790b08"
    assert subscriber_hash("  URIST.MCVANKAB@FREDDIESJOKES.COM ") == "62eeb292278cc15f5817cb78f7790b08"


def test_the_display_form_keeps_its_case_and_loses_its_padding() -> None:
    found = read_email({"Email": "  Jane.Smith@Example.COM   "}, FIRST_VALID)
    assert found == EmailIdentity(
        "Jane.Smith@Example.COM", hashlib.md5(b"jane.smith@example.com").hexdigest()
    )


@pytest.mark.parametrize(
    "address",
    [
        "a@b.co",
        "first.last+tag@sub.example.org",
        "o'brien@example.ie",
        "x_y-z@example-site.example",
        "A@B.CD",
    ],
)
def test_practical_addresses_are_valid(address: str) -> None:
    assert is_valid_email(address)


@pytest.mark.parametrize(
    "address",
    [
        "john@",
        "@example.com",
        "john@example",
        "john @example.com",
        "john@@example.com",
        "john..doe@example.com",
        ".john@example.com",
        "john@-example.com",
        "john@example.c",
        "jöhn@example.com",
        "john@exa_mple.com",
        '"john doe"@example.com',
        "a" * 65 + "@example.com",
        "a@" + "b" * 250 + ".com",
    ],
)
def test_broken_addresses_are_invalid(address: str) -> None:
    assert not is_valid_email(address)


@pytest.mark.parametrize("raw", ["", "   ", None, "n/a", "N/A", "none", "-"])
def test_a_blank_or_placeholder_column_is_no_email(raw: object) -> None:
    found = read_email({"Email": raw}, FIRST_VALID)
    assert isinstance(found, EmailProblem) and found.reason == "no_email"


def test_an_invalid_address_is_reported_with_the_trimmed_value() -> None:
    found = read_email({"Email": "  accounts at johnsons.example  "}, FIRST_VALID)
    assert found == EmailProblem(
        "invalid_email", "accounts at johnsons.example", "not an email address (no @)"
    )


@pytest.mark.parametrize(
    "raw",
    [
        "a@x.example.com; b@x.example.com",
        "a@x.example.com,b@x.example.com",
        "a@x.example.com b@x.example.com",
        "<a@x.example.com>, b@x.example.com",
    ],
)
def test_several_addresses_take_the_first_valid_one(raw: str) -> None:
    found = read_email({"Email": raw}, FIRST_VALID)
    assert isinstance(found, EmailIdentity) and found.address == "a@x.example.com"


def test_the_first_valid_address_wins_over_an_earlier_broken_one() -> None:
    found = read_email({"Email": "john@; b@x.example.com"}, FIRST_VALID)
    assert isinstance(found, EmailIdentity) and found.address == "b@x.example.com"


def test_several_addresses_are_rejected_when_the_audience_says_so() -> None:
    found = read_email({"Email": "a@x.example.com; b@x.example.com"}, REJECT_MULTIPLE)
    assert isinstance(found, EmailProblem) and found.reason == "invalid_email"
    assert "2 addresses" in found.detail


def test_a_long_invalid_value_is_truncated_in_the_report() -> None:
    found = read_email({"Email": "x" * 400 + "@"}, FIRST_VALID)
    assert isinstance(found, EmailProblem) and len(found.value) == 255


def test_a_mapping_to_a_column_the_row_lacks_is_unmappable() -> None:
    found = read_email({"Name": "x"}, EmailRules(column="Email2"))
    assert isinstance(found, EmailProblem) and found.reason == "unmappable"
