"""Settings and the connections file fail at start-up with a message naming the bad field."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.connections import ConnectionsError, load_connections
from shared.settings import KafkaSettings, MailchimpSettings, ServiceSettings, SettingsError, load

VALID = """
connections:
  - id: acme
    syspro:
      odata_url: http://127.0.0.1:8081/SYSPRO8Odata/SYSPROOData/EDU1
      operator: ADMIN
      credential: syspro-acme
    audiences:
      - id: main
        list_id: a1b2c3d4e5
        credential: mailchimp-acme
"""


def test_a_bad_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "CARRIER_PIGEON")
    with pytest.raises(SettingsError, match="KAFKA_SECURITY_PROTOCOL"):
        load(KafkaSettings)


def test_sasl_without_credentials_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    with pytest.raises(SettingsError, match="KAFKA_SASL_USERNAME"):
        load(KafkaSettings)


def test_sasl_and_tls_settings_become_client_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from shared.kafka import client_options

    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "mlc")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret-pw")
    settings = load(KafkaSettings)
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert options["sasl_plain_username"] == "mlc"
    assert options["sasl_plain_password"] == "s3cret-pw"
    assert options["ssl_context"].check_hostname is True
    assert "s3cret-pw" not in repr(settings)


def test_a_missing_tls_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(tmp_path / "nope.pem"))
    with pytest.raises(SettingsError, match="KAFKA_SSL_CAFILE"):
        load(KafkaSettings)


def test_service_and_mailchimp_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLC_HTTP_PORT", "99999")
    with pytest.raises(SettingsError, match="MLC_HTTP_PORT"):
        load(ServiceSettings)
    monkeypatch.setenv("MLC_MAILCHIMP_API_BASE", "https://api.example.test/3.0")
    with pytest.raises(SettingsError, match=r"MLC_MAILCHIMP_API_BASE.*dc"):
        load(MailchimpSettings)


def test_a_valid_connections_file_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "connections.yaml"
    path.write_text(VALID)
    config = load_connections(path)
    connection = config.get("acme")
    assert connection.syspro.strategy == "snapshot"
    assert connection.audience("main").status_if_new == "subscribed"
    assert connection.audience("main").policy.inactive_credit_statuses == ["9"]


@pytest.mark.parametrize(
    ("replace", "by", "named"),
    [
        (
            "credential: mailchimp-acme",
            "credential: mailchimp-acme\n        status_if_new: maybe",
            "connections[0].audiences[0].status_if_new",
        ),
        ("operator: ADMIN", "operator: ADMIN\n      strategy: psychic", "connections[0].syspro.strategy"),
        ("odata_url: http://", "odata_url: ftp://", "connections[0].syspro.odata_url"),
        (
            "list_id: a1b2c3d4e5",
            "list_id: a1b2c3d4e5\n        colour: blue",
            "connections[0].audiences[0].colour",
        ),
    ],
)
def test_an_invalid_connections_file_names_the_field(
    tmp_path: Path, replace: str, by: str, named: str
) -> None:
    path = tmp_path / "connections.yaml"
    path.write_text(VALID.replace(replace, by))
    with pytest.raises(ConnectionsError) as info:
        load_connections(path)
    assert named in str(info.value)


def test_a_missing_connections_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConnectionsError, match="cannot read connections file"):
        load_connections(tmp_path / "absent.yaml")
