"""Cleaning SYSPRO text before it reaches Mailchimp.

SYSPRO strings are fixed-width, non-Unicode columns: they arrive space-padded, sometimes with control
characters pasted in from other systems, and cp1252 punctuation that an upstream latin-1 decode turned into
C1 control codes. Every value that becomes a merge field, a tag or an address line goes through
``clean_text`` so that padding and invisible characters never reach Mailchimp, where they would make two
equal values differ and show up in campaigns.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["MAX_TEXT", "clean_text", "clip"]

MAX_TEXT = 255
"""Mailchimp's limit for a text merge field (and a sane cap for everything else we send)."""

# Invisible and bidi-control code points that are not whitespace but must not reach a merge field.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\ud800-\udfff]"
)
# Any run of whitespace (tabs, newlines, NBSP, the Unicode spaces) becomes one plain space.
_SPACES = re.compile(r"\s+")
# C1 controls are almost always cp1252 bytes decoded as latin-1 (0x92 -> right single quote).
_C1 = re.compile("[\x80-\x9f]")


def _cp1252(match: re.Match[str]) -> str:
    try:
        return bytes([ord(match.group())]).decode("cp1252")
    except UnicodeDecodeError:
        return ""  # 0x81, 0x8d, 0x8f, 0x90, 0x9d are undefined in cp1252


def clean_text(value: object) -> str:
    """A column value as display text: trimmed, one space between words, no control characters, NFC.

    ``None`` and blanks become ``""``. Never raises: any value SYSPRO can hold is turned into text.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    text = value if isinstance(value, str) else str(value)
    # Fast path: the common already-clean ASCII value costs three C-level checks.
    if text.isascii() and text.isprintable() and "  " not in text:
        return text.strip(" ")
    if not text.isascii():
        text = _C1.sub(_cp1252, text)
    text = _INVISIBLE.sub("", text)
    text = _SPACES.sub(" ", text).strip()
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text


def clip(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters (without a dangling space), and whether it was cut."""
    if len(text) <= limit:
        return text, False
    return text[:limit].rstrip(), True
