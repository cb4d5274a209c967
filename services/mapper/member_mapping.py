"""A SYSPRO ``ArCustomer`` row as one audience's merge fields and column tags.

Pure and configurable per audience (``FieldMapping``, ``AddressLayout``, ``TagRules``). Every value is
cleaned (``text.clean_text``) and clipped to a length Mailchimp accepts. A blank value is sent as ``""``
(Mailchimp's way of clearing a field), except ADDRESS: Mailchimp refuses an address without ``addr1``,
``city``, ``state`` and ``zip`` and fails the whole member, so an incomplete one is left out and noted
instead. Columns missing from the row read as blank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.mapper.countries import to_iso2
from services.mapper.names import split_contact
from services.mapper.text import MAX_TEXT, clean_text, clip
from shared.connections import AddressLayout, Audience

__all__ = ["MAX_TAG", "MemberFields", "MemberMapper"]

MAX_TAG = 100
MAX_PHONE = 50
_ADDRESS_LIMITS = {"addr1": 100, "addr2": 100, "city": 50, "state": 50, "zip": 20}
_REQUIRED = ("addr1", "city", "state", "zip")


@dataclass(frozen=True, slots=True)
class MemberFields:
    """What the row says about the member in one audience (status rules aside)."""

    merge_fields: dict[str, Any]
    tags: tuple[str, ...]
    notes: tuple[str, ...]


def _dedupe(tags: list[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    out: list[str] = []
    for tag in tags:
        folded = tag.casefold()
        if tag and folded not in seen:
            seen.add(folded)
            out.append(tag)
    return tuple(out)


class MemberMapper:
    """One audience's mapping, prepared once and applied to every row."""

    def __init__(self, audience: Audience) -> None:
        mapping = audience.mapping
        self.mapping = mapping
        self._tag_columns = tuple(audience.tags.from_columns.items())
        self._fixed_tags = tuple(
            t for t in (clip(clean_text(t), MAX_TAG)[0] for t in audience.tags.fixed) if t
        )
        self._texts: tuple[tuple[str, str, int], ...] = (
            tuple(
                [(mapping.company_merge_tag, mapping.company, MAX_TEXT)]
                if mapping.company_merge_tag and mapping.company
                else []
            )
            + ((("PHONE", mapping.phone, MAX_PHONE),) if mapping.phone else ())
            + tuple((tag, column, MAX_TEXT) for tag, column in mapping.extra.items())
        )

    def map(self, row: dict[str, Any]) -> MemberFields:
        """Merge fields, column/fixed tags and notes for ``row``. Never raises."""
        merge: dict[str, Any] = {}
        notes: list[str] = []
        mapping = self.mapping
        if mapping.contact or mapping.name_fallback:
            contact = clean_text(row.get(mapping.contact)) if mapping.contact else ""
            company = clean_text(row.get(mapping.name_fallback)) if mapping.name_fallback else ""
            name = split_contact(contact, company)
            self._put(merge, notes, "FNAME", name.first, MAX_TEXT)
            self._put(merge, notes, "LNAME", name.last, MAX_TEXT)
        for tag, column, limit in self._texts:
            self._put(merge, notes, tag, clean_text(row.get(column)), limit)
        if mapping.address is not None:
            address = self._address(row, mapping.address, notes)
            if address is not None:
                merge["ADDRESS"] = address
        tags = [
            clip(prefix + value, MAX_TAG)[0]
            for column, prefix in self._tag_columns
            if (value := clean_text(row.get(column)))
        ]
        return MemberFields(merge, _dedupe(tags + list(self._fixed_tags)), tuple(notes))

    @staticmethod
    def _put(merge: dict[str, Any], notes: list[str], tag: str, value: str, limit: int) -> None:
        value, cut = clip(value, limit)
        if cut:
            notes.append(f"truncated: {tag}")
        merge[tag] = value

    @staticmethod
    def _address(row: dict[str, Any], layout: AddressLayout, notes: list[str]) -> dict[str, str] | None:
        parts = {
            "addr1": clean_text(row.get(layout.addr1)),
            "addr2": clean_text(row.get(layout.addr2)) if layout.addr2 else "",
            "city": clean_text(row.get(layout.city)),
            "state": clean_text(row.get(layout.state)),
            "zip": clean_text(row.get(layout.zip)),
        }
        missing = [key for key in _REQUIRED if not parts[key]]
        if len(missing) == len(_REQUIRED):
            notes.append("address_missing")
            return None
        if missing:
            notes.append(f"address_incomplete: missing {', '.join(missing)}")
            return None
        for key, limit in _ADDRESS_LIMITS.items():
            parts[key], cut = clip(parts[key], limit)
            if cut:
                notes.append(f"truncated: ADDRESS.{key}")
        country_text = clean_text(row.get(layout.country)) if layout.country else ""
        fallback_text = clean_text(row.get(layout.country_fallback)) if layout.country_fallback else ""
        country = to_iso2(country_text) or to_iso2(fallback_text)
        if country:
            parts["country"] = country
        elif country_text or fallback_text:
            notes.append(f"address_country_unrecognised: {clip(country_text or fallback_text, 40)[0]}")
        return parts
