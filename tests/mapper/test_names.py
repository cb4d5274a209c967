"""Splitting SYSPRO's free-text Contact into FNAME and LNAME."""

from __future__ import annotations

import pytest

from services.mapper.names import split_contact

COMPANY = "Johnsons Bicycles"


@pytest.mark.parametrize(
    ("contact", "first", "last"),
    [
        ("Jane Smith", "Jane", "Smith"),
        ("Smith, Jane", "Jane", "Smith"),
        ("Dr. Jane van der Berg", "Jane", "van der Berg"),
        ("Mrs. Mary-Ann O'Brien", "Mary-Ann", "O'Brien"),
        ("Mary Ann Smith", "Mary Ann", "Smith"),
        ("Maria de la Cruz", "Maria", "de la Cruz"),
        ("Prof. Dr. Hans Müller PhD", "Hans", "Müller"),
        ("John Smith Jr.", "John", "Smith Jr."),
        ("Smith, John, Jr.", "John", "Smith Jr."),
        ("Smith, Dr. Jane", "Jane", "Smith"),
        ("Jane Smith (Accounts)", "Jane", "Smith"),
        ("Jane Smith / Bob Jones", "Jane", "Smith"),
        ("Attn: Jane Smith", "Jane", "Smith"),
        ("Jane & John Smith", "Jane & John", "Smith"),
        ("Siobhán Ó Súilleabháin", "Siobhán", "Ó Súilleabháin"),
        ("Jane", "Jane", ""),
        ("Mr Smith", "", "Smith"),
    ],
)
def test_a_person_is_split_into_first_and_last_name(contact: str, first: str, last: str) -> None:
    name = split_contact(contact, COMPANY)
    assert (name.first, name.last, name.source) == (first, last, "contact")


@pytest.mark.parametrize(
    "contact",
    ["", "Accounts Dept", "Purchasing", "Accounts Payable", "n/a", "-", "jane@example.com", "12345", "Dr."],
)
def test_a_department_placeholder_or_blank_contact_falls_back_to_the_company_name(contact: str) -> None:
    name = split_contact(contact, COMPANY)
    assert (name.first, name.last, name.source) == (COMPANY, "", "company")


def test_no_contact_and_no_company_gives_empty_names() -> None:
    name = split_contact("", "")
    assert (name.first, name.last, name.source) == ("", "", "none")
