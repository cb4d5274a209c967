"""Splitting SYSPRO's one free-text ``Contact`` into Mailchimp's FNAME and LNAME.

The column holds whatever the person at the order desk typed: ``Jane Smith``, ``Smith, Jane``,
``Dr. Jane van der Berg``, ``Mr Smith``, a single first name, or no person at all (``Accounts Dept``).
The split is a heuristic tuned for greetings ("Dear Jane"): titles and post-nominals are dropped, surname
particles stay with the surname, generational suffixes stay with the surname, and a contact that is a
role or a department is replaced by the company name in FNAME so a campaign never greets "Dear Accounts".
Input is expected to be cleaned already (``text.clean_text``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["ContactName", "split_contact"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_TITLES = _words(
    """mr mrs ms miss mx dr prof professor sir dame lord lady rev revd reverend fr father hon capt captain
    col major maj gen lt sgt mme mlle herr frau dott ing mag adv me madam madame"""
)
_GENERATIONAL = _words("jr jnr sr snr ii iii iv")
_POSTNOMINALS = _words("phd md esq cpa mba dds ca cfa pe pmp jd llb bsc msc ba ma obe mbe")
_PARTICLES = _words("van von der den de del della di da du la le dos das ter ten bin binti al el st ó ní")
# Words that mark a contact as a role, a department or a placeholder rather than a person.
_ROLES = _words(
    """accounts account accounting dept department purchasing procurement sales admin administration
    office reception receptionist manager management finance financial buyer buying orders ordering team
    payable payables receivable receivables creditors debtors bookkeeping invoices invoicing billing
    enquiries inquiries info general owner director staff desk store shop warehouse dispatch n/a na
    none nil unknown tbc tba various all"""
)
_PLACEHOLDERS = frozenset({"-", "--", ".", "?", "x", "xx", "xxx", "n/a", "na", "none", "tbc", "tba"})

_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]|\{[^}]*\}")
_SEVERAL = re.compile(r"\s*(?:/|;|\||\s\+\s)\s*")
_ATTENTION = re.compile(r"^(?:attn|att|attention|c/o|fao)\b[:.]?\s*", re.IGNORECASE)
# Quotes, dashes (hyphen, en and em dash) and other punctuation that wraps a name.
_EDGE_PUNCT = "\"'`.,;:-\u2013\u2014_*#"


@dataclass(frozen=True, slots=True)
class ContactName:
    """FNAME/LNAME and where FNAME came from (``contact``, ``company`` fallback, or ``none``)."""

    first: str
    last: str
    source: Literal["contact", "company", "none"]


def _word(token: str) -> str:
    return token.strip(_EDGE_PUNCT).replace(".", "").lower()


def _is_person(text: str) -> bool:
    if "@" in text or not any(ch.isalpha() for ch in text):
        return False
    if text.lower() in _PLACEHOLDERS:
        return False
    return not any(_word(token) in _ROLES for token in text.split(" "))


def _strip_titles(tokens: list[str]) -> tuple[list[str], bool]:
    titled = False
    while tokens and _word(tokens[0]) in _TITLES and len(tokens[0]) <= 12:
        tokens = tokens[1:]
        titled = True
    return tokens, titled


def _strip_suffixes(tokens: list[str]) -> tuple[list[str], str]:
    """Trailing suffixes off ``tokens``; returns the generational one (kept with the surname)."""
    generational = ""
    while len(tokens) > 1:
        word = _word(tokens[-1])
        if word in _GENERATIONAL and not generational:
            generational = tokens[-1].strip(",")
        elif word not in _POSTNOMINALS:
            break
        tokens = tokens[:-1]
    return tokens, generational


def _split_tokens(tokens: list[str]) -> tuple[str, str]:
    """Given names and surname of title-free tokens: particles start the surname."""
    if len(tokens) == 1:
        return tokens[0], ""
    start = len(tokens) - 1
    for i in range(1, len(tokens) - 1):
        if _word(tokens[i]) in _PARTICLES:
            start = i
            break
    return " ".join(tokens[:start]), " ".join(tokens[start:])


def _person(text: str) -> tuple[str, str] | None:
    """(first, last) of a text that names a person, or None when nothing is left of it."""
    generational = ""
    parts: list[str] = []
    for raw in text.split(","):
        tokens = raw.split()
        if not tokens:
            continue
        words = [_word(t) for t in tokens]
        if all(w in _GENERATIONAL or w in _POSTNOMINALS for w in words):
            # ", Jr." or ", PhD" after a comma: a suffix, not a part of the name.
            generational = generational or next(
                (t.strip(",") for t, w in zip(tokens, words, strict=True) if w in _GENERATIONAL), ""
            )
            continue
        parts.append(" ".join(tokens))
    if not parts:
        return None
    if len(parts) >= 2:
        # "Smith, Jane" (and "Smith, Dr. Jane"): surname first.
        last_tokens, _ = _strip_titles(parts[0].split(" "))
        first_tokens, _ = _strip_titles(parts[1].split(" "))
        first_tokens, suffix = _strip_suffixes(first_tokens)
        first, last = " ".join(first_tokens), " ".join(last_tokens)
    else:
        tokens = [t for t in parts[0].split(" ") if t.strip(_EDGE_PUNCT)]
        tokens, titled = _strip_titles(tokens)
        tokens, suffix = _strip_suffixes(tokens)
        if not tokens:
            return None
        # "Mr Smith": an honorific with one word means the word is a surname.
        first, last = ("", tokens[0]) if len(tokens) == 1 and titled else _split_tokens(tokens)
    generational = generational or suffix
    if generational and last:
        last = f"{last} {generational}"
    return first, last


def split_contact(contact: str, company: str) -> ContactName:
    """FNAME and LNAME from a cleaned ``Contact``, falling back to the cleaned company ``Name``."""
    if contact.lower() in _PLACEHOLDERS:
        contact = ""
    text = _BRACKETED.sub(" ", contact) if "(" in contact or "[" in contact or "{" in contact else contact
    text = _SEVERAL.split(text, maxsplit=1)[0] if text else text
    text = _ATTENTION.sub("", text).strip(" " + _EDGE_PUNCT.replace(".", ""))
    text = " ".join(text.split())
    if text and _is_person(text):
        person = _person(text)
        if person is not None:
            first, last = (part.strip(" ,") for part in person)
            if first or last:
                return ContactName(first, last, "contact")
    if company:
        return ContactName(company, "", "company")
    return ContactName("", "", "none")
