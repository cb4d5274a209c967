"""A SYSPRO row as one audience's merge fields, address and tags."""

from __future__ import annotations

from typing import Any

import pytest

from services.mapper.countries import to_iso2
from services.mapper.member_mapping import MemberMapper
from services.mapper.text import clean_text
from shared.connections import Audience
from tests.mapper.factories import row


def _mapper(**audience: Any) -> MemberMapper:
    return MemberMapper(
        Audience.model_validate({"id": "main", "list_id": "L1", "credential": "mc", **audience})
    )


def test_the_reference_row_maps_to_names_phone_and_a_complete_address() -> None:
    fields = _mapper().map(row())
    assert fields.merge_fields == {
        "FNAME": "Jane",
        "LNAME": "Smith",
        "PHONE": "555-2844",
        "ADDRESS": {
            "addr1": "12 Main Road",
            "addr2": "Northcliff",
            "city": "Johannesburg",
            "state": "Gauteng",
            "zip": "2195",
            "country": "ZA",
        },
    }
    assert fields.notes == ()


def test_padding_and_control_characters_never_reach_a_merge_field() -> None:
    fields = _mapper().map(
        row(Contact="  Jane\t Smith\x00 ", Telephone="555-2844     ", SoldToAddr1=" 12  Main\u00a0Road\r\n")
    )
    assert fields.merge_fields["FNAME"] == "Jane"
    assert fields.merge_fields["LNAME"] == "Smith"
    assert fields.merge_fields["PHONE"] == "555-2844"
    assert fields.merge_fields["ADDRESS"]["addr1"] == "12 Main Road"


def test_cp1252_characters_decoded_as_latin1_are_repaired() -> None:
    assert clean_text("O\x92Connor \x96 Sons") == "O\u2019Connor \u2013 Sons"


def test_an_incomplete_address_is_left_out_and_noted() -> None:
    fields = _mapper().map(row(SoldToAddr4="", SoldPostalCode="  "))
    assert "ADDRESS" not in fields.merge_fields
    assert fields.notes == ("address_incomplete: missing state, zip",)


def test_a_blank_address_is_left_out_and_noted() -> None:
    blank = {f"SoldToAddr{i}": "" for i in range(1, 6)}
    fields = _mapper().map(row(**blank, SoldPostalCode=""))
    assert "ADDRESS" not in fields.merge_fields and fields.notes == ("address_missing",)


def test_the_country_falls_back_to_nationality_as_iso2() -> None:
    fields = _mapper().map(row(SoldToAddr5="", Nationality="USA"))
    assert fields.merge_fields["ADDRESS"]["country"] == "US"


def test_an_unrecognised_country_is_left_out_rather_than_defaulting_to_the_us() -> None:
    fields = _mapper().map(row(SoldToAddr5="Atlantis", Nationality=""))
    assert "country" not in fields.merge_fields["ADDRESS"]
    assert fields.notes == ("address_country_unrecognised: Atlantis",)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("ZAF", "ZA"),
        ("zaf ", "ZA"),
        ("GBR", "GB"),
        ("U.S.A.", "US"),
        ("United Kingdom", "GB"),
        ("CA", "CA"),
        ("South  Africa", "ZA"),
        ("", None),
        ("Narnia", None),
    ],
)
def test_country_codes_and_names_map_to_iso2(text: str, code: str | None) -> None:
    assert to_iso2(clean_text(text)) == code


def test_the_address_layout_is_configurable() -> None:
    mapper = _mapper(
        mapping={
            "address": {
                "addr1": "ShipToAddr1",
                "addr2": None,
                "city": "City",
                "state": "State",
                "zip": "CountyZip",
                "country": None,
                "country_fallback": None,
            }
        }
    )
    fields = mapper.map(row(ShipToAddr1="1 Dock Rd", City="Bend", State="OR ", CountyZip="97701"))
    assert fields.merge_fields["ADDRESS"] == {
        "addr1": "1 Dock Rd",
        "addr2": "",
        "city": "Bend",
        "state": "OR",
        "zip": "97701",
    }


def test_company_and_custom_merge_fields_are_sent_only_when_configured() -> None:
    assert "COMPANY" not in _mapper().map(row()).merge_fields
    mapper = _mapper(
        mapping={
            "company_merge_tag": "COMPANY",
            "extra": {"SALESREP": "Salesperson", "CLASS": "CustomerClass"},
        }
    )
    fields = mapper.map(row(CustomerClass="  "))
    assert fields.merge_fields["COMPANY"] == "Johnsons Bicycles - South"
    assert fields.merge_fields["SALESREP"] == "100"
    assert fields.merge_fields["CLASS"] == ""


def test_a_department_contact_greets_the_company() -> None:
    fields = _mapper().map(row(Contact="Accounts Dept"))
    assert (fields.merge_fields["FNAME"], fields.merge_fields["LNAME"]) == ("Johnsons Bicycles - South", "")


def test_tags_come_from_columns_with_a_prefix_and_from_fixed_values() -> None:
    mapper = _mapper(
        tags={
            "from_columns": {"Branch": "branch-", "Area": "area-", "CustomerClass": "class-"},
            "fixed": ["syspro", " SYSPRO ", "b2b"],
        }
    )
    assert mapper.map(row(Branch=" 10 ", CustomerClass="")).tags == ("branch-10", "area-S", "syspro", "b2b")


def test_overlong_values_are_clipped_and_noted() -> None:
    mapper = _mapper(mapping={"extra": {"NOTE": "Note"}})
    fields = mapper.map(row(Note="word " * 100))
    assert len(fields.merge_fields["NOTE"]) <= 255
    assert fields.notes == ("truncated: NOTE",)


def test_missing_columns_read_as_blank() -> None:
    fields = _mapper().map({"Customer": "1", "Name": "Solo Traders"})
    assert fields.merge_fields["FNAME"] == "Solo Traders"
    assert fields.merge_fields["PHONE"] == ""
    assert fields.notes == ("address_missing",)
