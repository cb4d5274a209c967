"""e.net answers as they arrive on the wire: bare, JSON-quoted or WCF-wrapped, declared Windows-1252."""

from __future__ import annotations

from services.poller.enet_client import parse_profile, unwrap_body

SESSION = "3EA613166FE4BF47925DF1CEA14E910100"


def test_a_session_id_is_found_bare_quoted_or_wrapped() -> None:
    assert unwrap_body(f"{SESSION}  ".encode()) == SESSION
    assert unwrap_body(f'"{SESSION}  "'.encode()) == SESSION
    wrapped = f'<string xmlns="http://schemas.microsoft.com/2003/10/Serialization/">{SESSION}  </string>'
    assert unwrap_body(wrapped.encode()) == SESSION


def test_a_windows_1252_logon_profile_is_read_with_its_padding_trimmed() -> None:
    body = (
        '<?xml version="1.0" encoding="Windows-1252"?>\n'
        "<LogonProfile Language='05' Version='8.0'><CompanyName>Caf\xe9 Outdoor</CompanyName>"
        "<OperatorCode>ADMIN</OperatorCode><OperatorGroup/>"
        "<RowsReturned>      1</RowsReturned></LogonProfile>"
    ).encode("cp1252")
    profile = parse_profile(unwrap_body(body))
    assert profile["CompanyName"] == "Café Outdoor" and profile["OperatorCode"] == "ADMIN"
    assert (profile["OperatorGroup"], profile["RowsReturned"]) == ("", "1")
