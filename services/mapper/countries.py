"""Country text from SYSPRO to the ISO 3166-1 alpha-2 code Mailchimp's ADDRESS expects.

Sold-to line 5 holds a typed country name ("South Africa", "U.S.A.") and ``Nationality`` a padded ISO-3
code ("ZAF"). Mailchimp falls back to the US for a country it does not understand, which is worse than no
country, so an unrecognised value maps to ``None`` and the mapper leaves the country out.
"""

from __future__ import annotations

__all__ = ["to_iso2"]

# alpha-3, alpha-2, then common English names and spellings, "|"-separated.
_TABLE = """
USA US united states|united states of america|us|u s|u s a|america
CAN CA canada
GBR GB united kingdom|uk|u k|great britain|britain|england|scotland|wales|northern ireland
IRL IE ireland|republic of ireland|eire
ZAF ZA south africa|rsa|republic of south africa
AUS AU australia
NZL NZ new zealand
DEU DE germany|deutschland
FRA FR france
NLD NL netherlands|the netherlands|holland
BEL BE belgium
LUX LU luxembourg
CHE CH switzerland
AUT AT austria
ITA IT italy
ESP ES spain
PRT PT portugal
DNK DK denmark
NOR NO norway
SWE SE sweden
FIN FI finland
ISL IS iceland
POL PL poland
CZE CZ czech republic|czechia
SVK SK slovakia
HUN HU hungary
ROU RO romania
BGR BG bulgaria
GRC GR greece
TUR TR turkey|turkiye
HRV HR croatia
SVN SI slovenia
SRB RS serbia
EST EE estonia
LVA LV latvia
LTU LT lithuania
UKR UA ukraine
RUS RU russia|russian federation
ISR IL israel
ARE AE united arab emirates|uae
SAU SA saudi arabia
QAT QA qatar
EGY EG egypt
MAR MA morocco
NGA NG nigeria
KEN KE kenya
GHA GH ghana
NAM NA namibia
BWA BW botswana
ZWE ZW zimbabwe
ZMB ZM zambia
MOZ MZ mozambique
LSO LS lesotho
SWZ SZ eswatini|swaziland
MUS MU mauritius
TZA TZ tanzania
UGA UG uganda
IND IN india
PAK PK pakistan
BGD BD bangladesh
LKA LK sri lanka
CHN CN china|peoples republic of china|prc
HKG HK hong kong
TWN TW taiwan
JPN JP japan
KOR KR south korea|korea|republic of korea
SGP SG singapore
MYS MY malaysia
IDN ID indonesia
THA TH thailand
VNM VN vietnam|viet nam
PHL PH philippines
MEX MX mexico
BRA BR brazil
ARG AR argentina
CHL CL chile
COL CO colombia
PER PE peru
URY UY uruguay
"""


def _key(text: str) -> str:
    return " ".join("".join(ch if ch.isalnum() else " " for ch in text.lower()).split())


def _build() -> dict[str, str]:
    table: dict[str, str] = {}
    for line in _TABLE.strip().splitlines():
        alpha3, alpha2, names = line.split(" ", 2)
        table[alpha3.lower()] = alpha2
        table[alpha2.lower()] = alpha2
        for name in names.split("|"):
            table[_key(name)] = alpha2
    return table


_LOOKUP = _build()


def to_iso2(value: str) -> str | None:
    """The alpha-2 code for a country code or name, or None when it is blank or not recognised."""
    if not value:
        return None
    found = _LOOKUP.get(value.lower()) if len(value) <= 3 else None
    return found or _LOOKUP.get(_key(value))
