"""A customer's email identity: which address from SYSPRO's ``Email`` column, and its subscriber hash.

Mailchimp identifies a member by ``md5(lower(trim(email)))``; the address keeps the case it was typed in
(the "display form"), only the hash is lower-cased. SYSPRO's column is free text: it may be blank, hold a
placeholder (``n/a``), a typo (``john@``), or several addresses (``a@x.com; b@x.com``).
Validation is a practical subset of RFC 5322 that Mailchimp accepts: an ASCII dot-atom local part of at
most 64 characters, a domain of letter-digit-hyphen labels with at least one dot, 254 characters in all.
Quoted local parts and internationalised addresses are refused on purpose: Mailchimp rejects them too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from services.mapper.text import MAX_TEXT, clean_text, clip
from shared.connections import EmailRules

__all__ = ["EmailIdentity", "EmailProblem", "is_valid_email", "read_email", "subscriber_hash"]

MAX_EMAIL = 254

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(
    rf"(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[A-Za-z](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])"
)
_SEPARATORS = re.compile(r"[;,\s]+")
_WRAPPING = "<>\"'()[]"
_PLACEHOLDERS = frozenset(
    {"-", "--", ".", "n/a", "na", "none", "nil", "null", "no email", "noemail", "tbc", "tba", "x"}
)


@dataclass(frozen=True, slots=True)
class EmailIdentity:
    """A valid address in its display form, and its Mailchimp subscriber hash."""

    address: str
    subscriber_hash: str


@dataclass(frozen=True, slots=True)
class EmailProblem:
    """Why no address could be taken from the column, with the offending value (trimmed, clipped)."""

    reason: Literal["no_email", "invalid_email", "unmappable"]
    value: str
    detail: str


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the trimmed, lower-cased address."""
    return hashlib.md5(email.strip().lower().encode()).hexdigest()


def is_valid_email(address: str) -> bool:
    return len(address) <= MAX_EMAIL and address.isascii() and _EMAIL.fullmatch(address) is not None


def _candidate(token: str) -> str:
    token = token.strip(_WRAPPING)
    if token[:7].lower() == "mailto:":
        token = token[7:]
    return token.strip(_WRAPPING)


def read_email(row: Mapping[str, object], rules: EmailRules) -> EmailIdentity | EmailProblem:
    """The customer's address per ``rules``, or the problem to report. Never raises."""
    if rules.column not in row:
        return EmailProblem("unmappable", "", f"column {rules.column} is not in the row")
    raw = row[rules.column]
    text = clean_text(raw)
    shown, _ = clip(text, MAX_TEXT)
    if not text:
        return EmailProblem("no_email", "", "the email column is blank")
    if text.lower() in _PLACEHOLDERS:
        return EmailProblem("no_email", shown, "the email column holds a placeholder, not an address")
    if "@" not in text:
        return EmailProblem("invalid_email", shown, "not an email address (no @)")
    # The common case, one clean address, skips the tokenizer.
    if is_valid_email(text):
        return EmailIdentity(text, subscriber_hash(text))
    addresses = [c for c in (_candidate(t) for t in _SEPARATORS.split(text)) if "@" in c]
    if len(addresses) > 1 and rules.multiple == "reject":
        return EmailProblem(
            "invalid_email",
            shown,
            f"the field holds {len(addresses)} addresses and email.multiple is 'reject'",
        )
    for address in addresses:
        if is_valid_email(address):
            return EmailIdentity(address, subscriber_hash(address))
    if len(addresses) > 1:
        return EmailProblem("invalid_email", shown, f"none of the {len(addresses)} addresses is valid")
    return EmailProblem("invalid_email", shown, "not a valid email address")
