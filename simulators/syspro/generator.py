"""A seeded, realistic customer master of a mid-sized outdoor-goods distributor.

The data carries the traits that break naive integrations: blank and invalid emails, several addresses in
one field, the same email on two customers, partial addresses, names with accented and cp1252-only
characters (’ “ ” –), space-padded ``char(n)`` columns, customers on hold and on credit status 9, null
dates, stray trailing spaces.

Rows are tuples in ``AR_CUSTOMER`` column order without the trailing ``TimeStamp`` (the store assigns
rowversions). Only the customer code, email, phone and fax are made per row; everything else is drawn from
pools built once per seed (names, streets, contacts, classification profiles), the way a real master repeats
itself. That keeps a million rows to a few seconds and to shared string objects in memory.
"""

# ruff: noqa: RUF001, RUF002  (Windows-1252 punctuation in literals is deliberate data)

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

from simulators.syspro.generator_data import (
    ADJECTIVES,
    AREAS,
    BRANCHES,
    COUNTRIES,
    COUNTRY_WEIGHTS,
    CREDIT_LIMITS,
    CREDIT_STATUSES,
    CUSTOMER_CLASSES,
    DIRECTIONS,
    EMAIL_LOCALS,
    FIRST_NAMES,
    INVALID_EMAILS,
    LANGUAGE_CODES,
    NOUNS,
    PRICE_CODES,
    SALESPEOPLE,
    STREET_TYPES,
    STREETS,
    SUFFIXES,
    SURNAMES,
    TERMS_CODES,
    TLDS,
    TRADES,
    UNITS,
    USER_FIELD1,
)
from simulators.syspro.schema import AR_CUSTOMER, format_datetime

__all__ = ["generate_company", "iter_customer_rows"]

_COLUMNS = AR_CUSTOMER.names[:-1]
_COUNTRY_TABLE = tuple(i for i, weight in enumerate(COUNTRY_WEIGHTS) for _ in range(round(weight * 100)))
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
Rnd = Callable[[], float]


def _pick(rnd: Rnd, seq: tuple[Any, ...] | list[Any]) -> Any:
    return seq[int(rnd() * len(seq))]


def _compile_pattern(pattern: str) -> tuple[str, tuple[int, ...]]:
    """``(###) 555-####`` -> a format string and its runs (digit runs positive, letter runs negative)."""
    parts: list[str] = []
    widths: list[int] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch in "#A":
            j = i
            while j < len(pattern) and pattern[j] == ch:
                j += 1
            parts.append(f"{{{len(widths)}:0{j - i}d}}" if ch == "#" else f"{{{len(widths)}}}")
            widths.append(j - i if ch == "#" else i - j)
            i = j
        else:
            parts.append(ch.replace("{", "{{").replace("}", "}}"))
            i += 1
    return "".join(parts), tuple(widths)


def _fill(compiled: tuple[str, tuple[int, ...]], rnd: Rnd) -> str:
    template, widths = compiled
    values: list[Any] = []
    for width in widths:
        if width > 0:
            values.append(int(rnd() * 10**width))
        else:
            values.append("".join(_LETTERS[int(rnd() * 26)] for _ in range(-width)))
    return template.format(*values)


def _slug(text: str) -> str:
    ascii_only = text.encode("ascii", "ignore").decode("ascii").lower()
    return "".join(ch for ch in ascii_only if ch.isalnum())


def _company_name(rnd: Rnd) -> tuple[str, str, str]:
    """(Name, ShortName, slug for the web domain)."""
    surname = _pick(rnd, SURNAMES)
    trade = _pick(rnd, TRADES)
    r = rnd()
    if r < 0.30:
        name = f"{surname} {trade}"
    elif r < 0.42:
        apostrophe = "’" if rnd() < 0.4 else "'"
        name = f"{surname}{apostrophe}s {trade}"
    elif r < 0.54:
        name = f"{surname} & {_pick(rnd, SURNAMES)} {trade}"
    elif r < 0.66:
        name = f"{_pick(rnd, ADJECTIVES)} {trade}"
    elif r < 0.72:
        name = f"“{_pick(rnd, ADJECTIVES)} {_pick(rnd, NOUNS)}” {trade}"
    elif r < 0.86:
        name = f"{surname} {trade} {'–' if rnd() < 0.5 else '-'} {_pick(rnd, DIRECTIONS)}"
    else:
        name = f"{_pick(rnd, NOUNS)} {trade}"
    slug = _slug(name)[:24]
    suffix = _pick(rnd, SUFFIXES)
    if suffix:
        name = f"{name} {suffix}"
    name = name[:50]
    short = name[:10] if rnd() < 0.7 else name[:20].upper()
    return name, short, slug


class _Pools:
    """Everything a row draws from, built once per seed."""

    def __init__(self, rng: random.Random, today: date, size: int) -> None:
        rnd = rng.random
        self.size = size
        self.names = [_company_name(rnd) for _ in range(size)]
        self.contacts = [f"{first} {last}" for first in FIRST_NAMES for last in SURNAMES]
        self.streets = [self._street(rnd) for _ in range(size)]
        small = min(4096, size)
        self.profiles = [self._profile(rnd) for _ in range(small)]
        self.countries = []
        for code, currency, country_name, phone, postal, places in COUNTRIES:
            postal_pattern = _compile_pattern(postal)
            postals = [_fill(postal_pattern, rnd) for _ in range(small)]
            self.countries.append((code, currency, country_name, _compile_pattern(phone), postals, places))
        # Shared date strings: a real master has few distinct dates.
        self.dates = [format_datetime(today - timedelta(days=k)) for k in range(15 * 365)]
        self.first_slugs = {first: _slug(first) for first in FIRST_NAMES}

    @staticmethod
    def _street(rnd: Rnd) -> str:
        if rnd() < 0.05:
            return f"PO Box {1 + int(rnd() * 99999)}"
        street = f"{1 + int(rnd() * 9999)} {_pick(rnd, STREETS)} {_pick(rnd, STREET_TYPES)}"
        return f"{street} " if rnd() < 0.04 else street  # keyed in with a stray trailing space

    @staticmethod
    def _profile(rnd: Rnd) -> tuple[Any, ...]:
        """Branch .. CreditLimit: how the distributor classifies an account."""
        return (
            _pick(rnd, BRANCHES),
            _pick(rnd, AREAS),
            _pick(rnd, CUSTOMER_CLASSES),
            _pick(rnd, SALESPEOPLE) if rnd() < 0.97 else "",
            _pick(rnd, SALESPEOPLE) if rnd() < 0.1 else "",
            "",
            "",
            _pick(rnd, PRICE_CODES),
            _pick(rnd, TERMS_CODES),
            "C" if rnd() < 0.1 else " ",
            "Y" if rnd() < 0.8 else "N",
            _pick(rnd, CREDIT_LIMITS),
        )


def _email(rnd: Rnd, slug: str, number: int, first_slug: str, recent: list[str]) -> str:
    domain = f"{slug}{number}.{TLDS[number % 4]}"
    local = first_slug if rnd() < 0.35 else _pick(rnd, EMAIL_LOCALS)
    r = rnd()
    if r < 0.84:
        email = f"{local}@{domain}"
        style = rnd()
        if style < 0.08:
            return email.capitalize()
        if style < 0.10:
            return email.upper()
        if style < 0.13:
            return f"{email} "
        if style < 0.15 and len(recent) < 500:
            recent.append(email)
        return email
    if r < 0.90:
        return ""
    if r < 0.93:
        return str(_pick(rnd, INVALID_EMAILS)).format(d=domain, l=local, s=slug)
    if r < 0.965:
        separator = ("; ", ";", ",", ", ")[int(rnd() * 4)]
        return f"{local}@{domain}{separator}{_pick(rnd, EMAIL_LOCALS)}@{domain}"
    if recent:  # the same address on a second account (head office paying for branches)
        return recent[int(rnd() * len(recent))]
    return f"{local}@{domain}"


_BLANK_SHIP = ("", "", "", "", "", "", "")
_NOT_HELD = (" ",) * 6


def _customer_row(rnd: Rnd, number: int, pools: _Pools, recent: list[str]) -> tuple[Any, ...]:
    size = pools.size
    name, short, slug = pools.names[int(rnd() * size)]
    code, currency, country_name, phone, postals, places = pools.countries[_pick(rnd, _COUNTRY_TABLE)]
    city, province, us_state = _pick(rnd, places)

    first = _pick(rnd, FIRST_NAMES)
    r = rnd()
    contact = (
        pools.contacts[int(rnd() * len(pools.contacts))]
        if r < 0.85
        else ("" if r < 0.95 else "Accounts Dept")
    )
    email = _email(rnd, slug, number, pools.first_slugs[first] or "contact", recent)
    telephone = _fill(phone, rnd) if rnd() < 0.93 else ""
    fax = _fill(phone, rnd) if rnd() < 0.25 else ""
    add_tel = _fill(phone, rnd) if rnd() < 0.08 else ""
    extn = f"{100 + int(rnd() * 900)}  " if rnd() < 0.05 else "     "

    street = pools.streets[int(rnd() * size)]
    addr2 = _pick(rnd, UNITS) if rnd() < 0.25 else ""
    addr3, addr4 = city, province
    addr5 = country_name if rnd() < 0.7 else ""
    postal = _pick(rnd, postals) if rnd() < 0.9 else ""
    r = rnd()
    if r > 0.90:  # partial address: only some lines were ever typed in
        addr3 = city if rnd() < 0.5 else ""
        addr4 = addr5 = ""
        if r > 0.97:
            street = addr2 = postal = ""
    gps = rnd() < 0.2
    lat = round(-90 + rnd() * 180, 6) if gps else 0
    lon = round(-180 + rnd() * 360, 6) if gps else 0

    r = rnd()
    if r < 0.5:
        ship: tuple[str, ...] = _BLANK_SHIP
    elif r < 0.85:
        ship = (street, addr2, addr3, "", addr4, addr5, postal)
    else:
        ship = (pools.streets[int(rnd() * size)], "", city, "", province, country_name, _pick(rnd, postals))
    is_us = code == "USA"
    state = us_state if is_us else "  "
    zip5 = postal[:5].ljust(5) if is_us else "     "
    state1 = state if is_us and ship[0] else "  "

    on_hold = "Y" if rnd() < 0.05 else "N"
    credit_status = _pick(rnd, CREDIT_STATUSES)
    held = on_hold == "Y" or credit_status == "9"
    allowed = tuple("Y" if rnd() < 0.5 else "N" for _ in range(6)) if held else _NOT_HELD

    dates = pools.dates
    added_age = int(rnd() * (len(dates) - 1))
    if rnd() < 0.08:
        last_sale = None
        last_pay = None if rnd() < 0.6 else dates[min(added_age, int(rnd() * 1095))]
    else:
        sale_age = min(added_age, int(rnd() * 1095))
        last_sale = dates[sale_age]
        last_pay = None if rnd() < 0.12 else dates[min(added_age, sale_age + int(rnd() * 60))]

    return (
        f"{number:06d}",
        name,
        short,
        *_pick(rnd, pools.profiles),
        on_hold,
        credit_status,
        currency,
        _pick(rnd, LANGUAGE_CODES) if code == "CAN" else "  ",
        code,
        telephone,
        extn,
        add_tel,
        fax,
        "",
        email,
        contact,
        "",
        street,
        addr2,
        addr3,
        "",
        addr4,
        addr5,
        postal,
        lat,
        lon,
        *ship,
        state,
        zip5,
        "   ",
        state1,
        "     ",
        "   ",
        "   ",
        f"{1 + int(rnd() * number):06d}" if rnd() < 0.03 else "",
        "",
        dates[added_age],
        last_sale,
        last_pay,
        *allowed,
        _pick(rnd, USER_FIELD1),
        round(rnd() * 1000, 2) if rnd() < 0.1 else 0,
    )


def iter_customer_rows(n: int, seed: int = 0, today: date | None = None) -> Iterator[tuple[Any, ...]]:
    """Yield ``n`` customers (codes ``000001``…) as tuples in column order, ``TimeStamp`` excluded."""
    rng = random.Random(seed)
    # Pools of about two entries per customer, capped: small companies barely repeat names, large ones do.
    pools = _Pools(rng, today or date.today(), min(65536, max(512, 2 * n)))
    rnd = rng.random
    recent: list[str] = []
    for number in range(1, n + 1):
        yield _customer_row(rnd, number, pools, recent)


def generate_company(n: int, seed: int = 0, today: date | None = None) -> list[dict[str, Any]]:
    """``n`` customers as dicts keyed by ``ArCustomer`` column name (no ``TimeStamp``)."""
    return [dict(zip(_COLUMNS, row, strict=True)) for row in iter_customer_rows(n, seed, today)]
