"""Kafka over TLS with SASL: the four services run end to end against a broker that only accepts
SASL_SSL clients, and a wrong password, a plaintext client or an untrusted certificate is refused.

The broker is the test's own (``SaslSslBroker``): a private CA, a certificate for ``localhost``, and
SASL/PLAIN users. ``docs/reliability.md`` lists the settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from shared.kafka import make_admin
from shared.settings import KafkaSettings
from simulators.expectations import compare
from simulators.stack import REPO, StackOptions
from tests.reliability.invariants import leaks, stack_secrets
from tests.reliability.observe import dump_topics
from tests.reliability.pipeline import eventually, running_pipeline
from tests.reliability.scale import record_figures
from tests.reliability.secrets_scan import SecretSet
from tests.reliability.tls_broker import SaslSslBroker

PASSWORD = "kafka-Sasl-Secret-7"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslSslBroker]:
    running = SaslSslBroker(tmp_path_factory.mktemp("sasl-ssl"), {"mlc": PASSWORD})
    running.start()
    try:
        yield running
    finally:
        running.close()


def _settings(broker: SaslSslBroker, **changes: object) -> KafkaSettings:
    values: dict[str, object] = {
        "bootstrap_servers": broker.bootstrap,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_username": "mlc",
        "sasl_password": SecretStr(PASSWORD),
        "ssl_cafile": broker.ca,
        "namespace": "sec.",
        "request_timeout_ms": 10_000,
    }
    values.update(changes)
    return KafkaSettings.model_validate(values)


def _env(settings: KafkaSettings) -> dict[str, str]:
    assert settings.sasl_password is not None
    return {
        "KAFKA_SECURITY_PROTOCOL": settings.security_protocol,
        "KAFKA_SASL_MECHANISM": str(settings.sasl_mechanism),
        "KAFKA_SASL_USERNAME": str(settings.sasl_username),
        "KAFKA_SASL_PASSWORD": settings.sasl_password.get_secret_value(),
        "KAFKA_SSL_CAFILE": str(settings.ssl_cafile),
    }


@pytest.mark.timeout(600)
async def test_the_pipeline_runs_end_to_end_over_sasl_ssl_without_leaking_the_password(
    broker: SaslSslBroker, tmp_path: Path
) -> None:
    kafka = _settings(broker)
    options = StackOptions(customers=100, seed=8, poll_interval=1.0, env=_env(kafka))
    async with running_pipeline(kafka, tmp_path / "stack", options) as p:
        await eventually(lambda: compare(p.stack).ok, 180, 0.5, "the initial load over SASL_SSL")
        created = subprocess.run(
            [sys.executable, "-m", "services.cli", "topics", "create", "--json"],
            env=p.stack.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        dump = await dump_topics(kafka)
        secrets = SecretSet({**stack_secrets(p).secrets, "kafka sasl password": PASSWORD})
        found = leaks(p, dump, secrets)
        p.assert_alive()
        records = sum(len(r) for r in dump.records.values())
    record_figures(
        "kafka_security",
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "records_over_sasl_ssl": records,
            "leaks": len(found),
        },
    )
    assert created.returncode == 0, created.stderr
    assert '"mismatch"' not in created.stdout
    assert PASSWORD not in created.stdout + created.stderr
    assert not found, found[:10]


async def _refused(settings: KafkaSettings) -> str:
    admin = make_admin(settings, "sec-probe")
    try:
        await admin.start()
        await admin.list_topics()
    except (KafkaError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await admin.close()
    return ""


@pytest.mark.timeout(300)
async def test_a_wrong_password_a_plaintext_client_and_an_untrusted_certificate_are_refused(
    broker: SaslSslBroker, tmp_path: Path
) -> None:
    other_ca = SaslSslBroker(tmp_path / "other", {}).ca
    cases = {
        "wrong password": _settings(broker, sasl_password=SecretStr("not-the-password")),
        "plaintext client": _settings(broker, security_protocol="PLAINTEXT"),
        "untrusted certificate": _settings(broker, ssl_cafile=other_ca),
    }
    for case, settings in cases.items():
        error = await _refused(settings)
        assert error, f"{case}: the broker accepted the client"
        assert PASSWORD not in error and "not-the-password" not in error, error


def test_topics_create_with_a_wrong_password_fails_without_printing_it(broker: SaslSslBroker) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MLC_"))},
        **_env(_settings(broker)),
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "KAFKA_NAMESPACE": "sec-wrong.",
        "KAFKA_SASL_PASSWORD": "not-the-password",
        "KAFKA_REQUEST_TIMEOUT_MS": "5000",
    }
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "topics", "create"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "not-the-password" not in output and PASSWORD not in output
