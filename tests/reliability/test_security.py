"""Secrets at rest, in motion and in output: the credential store holds no plaintext, a wrong master key
stops a service with a clear message and no secret, a key rotation keeps every credential readable by
the running pipeline, refused credentials leave no secret in logs, topics or the audit, and the audit API
answers nothing without its token.

Customer codes with quotes through the poller's filters are checked end to end by
``test_hostile_input`` (cursor key-set paging, key lookups, deletes).
"""

from __future__ import annotations

import base64
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from shared.credentials import CredentialError, CredentialStore, generate_key
from shared.settings import KafkaSettings
from simulators._server import free_port
from simulators.expectations import compare
from simulators.stack import API_KEY, AUDIT_TOKEN, ODATA_PASSWORD, REPO, SERVICES, StackOptions
from tests.reliability.invariants import leaks, stack_secrets
from tests.reliability.observe import dump_topics
from tests.reliability.pipeline import Pipeline, eventually, prepared_pipeline
from tests.reliability.scale import record_figures
from tests.reliability.secrets_scan import SecretSet, scan

STORE_USERS = ("poller", "loader")
"""The services that open the credential store."""
DATA_ROUTES = (
    "/status",
    "/failures",
    "/runs",
    "/reconcile",
    "/events",
    "/customers/000001/timeline",
    "/runs/x",
)


def _cli(
    env: dict[str, str], *args: str, stdin: str = "", timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """``ml-connector <args>`` with ``env``, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _options() -> StackOptions:
    return StackOptions(customers=60, seed=4, poll_interval=1.0)


def test_the_credential_store_file_holds_no_plaintext_secret(tmp_path: Path) -> None:
    from simulators.stack import LocalStack

    stack = LocalStack(tmp_path, KafkaSettings(namespace="unused."), _options())
    stack.write_config()
    path = tmp_path / "credentials.json"
    data = path.read_bytes()
    found = scan(
        SecretSet({"odata password": ODATA_PASSWORD, "mailchimp api key": API_KEY}), [(str(path), data)]
    )
    assert not found, found
    assert stack.master_key.encode() not in data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _run_briefly(env: dict[str, str], service: str, seconds: float = 45.0) -> tuple[int | None, str]:
    """Start ``ml-connector run <service>``; its exit code and output, or (None, output) when it was
    still running after ``seconds`` (then it is killed)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", service],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = proc.communicate(timeout=seconds)
        return proc.returncode, output
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        return None, output


@pytest.mark.parametrize("service", STORE_USERS)
def test_a_wrong_master_key_stops_the_service_with_a_clear_message_and_no_secret(
    kafka_settings: KafkaSettings, tmp_path: Path, service: str
) -> None:
    from simulators.stack import LocalStack

    stack = LocalStack(tmp_path, kafka_settings, _options())
    env = stack.write_config()
    wrong = generate_key()
    cases = {
        "another valid key": (wrong, "cannot be decrypted with the configured master key"),
        "not a Fernet key": ("not-a-key", "is not a valid Fernet key"),
        "no key at all": ("", "no master key"),
    }
    secrets = SecretSet(
        {"odata": ODATA_PASSWORD, "api key": API_KEY, "right key": stack.master_key, "given": wrong}
    )
    for case, (key, message) in cases.items():
        code, output = _run_briefly(
            {**env, "MLC_MASTER_KEY": key, "MLC_HTTP_PORT": str(free_port())}, service
        )
        assert code is not None, f"{service} with {case} was still running after 45 s:\n{output[-2000:]}"
        assert code != 0, f"{service} with {case} exited 0:\n{output[-2000:]}"
        # The CLI's console wraps long lines: compare and scan with the line breaks taken out too.
        unwrapped = output.replace("\n", "")
        assert message in " ".join(output.split()), f"{service} with {case}:\n{output[-2000:]}"
        assert not scan(secrets, [("output", output.encode()), ("unwrapped", unwrapped.encode())]), output


@pytest.mark.timeout(600)
async def test_a_rotated_master_key_keeps_every_credential_readable_by_the_pipeline(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    async with prepared_pipeline(kafka, tmp_path / "stack", _options()) as p:
        old, new = p.stack.master_key, generate_key()
        env = {**p.stack.env, "MLC_MASTER_KEY": old}
        result = _cli(env, "credentials", "rotate", "--new-key-stdin", stdin=new + "\n")
        assert result.returncode == 0, result.stderr
        assert not scan(stack_secrets(p), [("rotate output", (result.stdout + result.stderr).encode())])
        path = Path(env["MLC_CREDENTIALS_FILE"])
        with pytest.raises(CredentialError, match="cannot be decrypted"):
            CredentialStore(path, [old]).get("syspro-demo")
        rotated = CredentialStore(path, [new])
        assert rotated.get("syspro-demo").secret() == ODATA_PASSWORD
        assert rotated.get("mailchimp-demo").secret() == API_KEY
        listed = _cli({**env, "MLC_MASTER_KEY": new}, "credentials", "list", "--json")
        assert listed.returncode == 0 and API_KEY not in listed.stdout and ODATA_PASSWORD not in listed.stdout

        # The whole pipeline runs on the new key alone.
        p.stack.env["MLC_MASTER_KEY"] = new
        p.stack.master_key = new
        for service in SERVICES:
            p.start(service)
        for service in SERVICES:
            await p.process(service).wait_ready()
        await eventually(lambda: compare(p.stack).ok, 180, 0.5, "the initial load on the rotated key")
        p.assert_alive()


@pytest.mark.timeout(600)
async def test_refused_credentials_leave_no_secret_in_logs_topics_or_the_audit(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    async with prepared_pipeline(kafka, tmp_path / "stack", _options()) as p:
        for service in SERVICES:
            p.start(service)
        for service in SERVICES:
            await p.process(service).wait_ready()
        await eventually(lambda: compare(p.stack).ok, 180, 0.5, "the initial load")
        # SYSPRO's operator gets a new OData password: every poll is refused until it is set back.
        p.stack.syspro.set_operator("MLC", odata_password="changed-by-the-erp-admin")
        polls = await p.metrics("poller")
        await eventually(
            lambda: _refusals(p, polls.total("mlc_poller_auth_refusals_total")), 60, 0.5, "refused polls"
        )
        p.stack.syspro.set_operator("MLC", odata_password=ODATA_PASSWORD)
        # Mailchimp stops accepting the key: the loader's commands are refused meanwhile.
        mc = p.stack.mailchimp
        mc.config.disabled_api_keys.append(API_KEY)
        row = p.stack.syspro.rows()[0]
        p.stack.syspro.update(row["Customer"], Telephone="AFTER-KEY-DISABLED")
        await eventually(lambda: mc.stats.count("*", 401) or mc.stats.count("*", 403), 60, 0.5, "refused key")
        mc.config.disabled_api_keys.remove(API_KEY)
        dump = await dump_topics(p.kafka)
        found = leaks(p, dump)
        api_figures = await _audit_api_refuses_without_token(p)
        record_figures(
            "security",
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "log_files_scanned": len(list(p.stack.workdir.glob("*.log"))),
                "records_scanned": sum(len(r) for r in dump.records.values()),
                "secret_leaks": len(found),
                **api_figures,
            },
        )
        assert not found, found[:10]


async def _refusals(p: Pipeline, before: float) -> bool:
    return (await p.metrics("poller")).total("mlc_poller_auth_refusals_total") > before


async def _audit_api_refuses_without_token(p: Pipeline) -> dict[str, int]:
    """Every data route: 401 without a token, with a wrong one, with the right one in the wrong scheme
    or in the query string; 200 (or 404 for an unknown run) with it. The token is never echoed."""
    url = p.process("audit").url
    basic = "Basic " + base64.b64encode(f"audit:{AUDIT_TOKEN}".encode()).decode()
    attempts = {
        "no token": {},
        "wrong token": {"Authorization": "Bearer not-the-token"},
        "token in Basic": {"Authorization": basic},
        "empty bearer": {"Authorization": "Bearer"},
        "token prefix": {"Authorization": f"Bearer {AUDIT_TOKEN[:-1]}"},
    }
    refused = 0
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
        for route in DATA_ROUTES:
            for name, headers in attempts.items():
                response = await client.get(route, headers=headers)
                assert response.status_code == 401, (route, name, response.status_code)
                assert AUDIT_TOKEN not in response.text
                refused += 1
            response = await client.get(route, params={"token": AUDIT_TOKEN, "access_token": AUDIT_TOKEN})
            assert response.status_code == 401, (route, "query string")
            refused += 1
            good = await client.get(route, headers={"Authorization": f"Bearer {AUDIT_TOKEN}"})
            assert good.status_code in (200, 404), (route, good.status_code, good.text[:300])
            assert AUDIT_TOKEN not in good.text
    counted = (await p.metrics("audit")).total("mlc_audit_api_unauthorized_total")
    assert counted >= refused
    return {"audit_requests_refused": refused, "audit_routes_checked": len(DATA_ROUTES)}


def test_the_sasl_password_never_shows_in_a_repr_or_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configuration only: a broker that speaks SASL_SSL is exercised in ``test_kafka_security``."""
    from shared.kafka import client_options
    from shared.settings import SettingsError, load

    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "mlc")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "kafka-Secret-99")
    settings = load(KafkaSettings)
    assert "kafka-Secret-99" not in repr(settings) and "kafka-Secret-99" not in str(settings)
    options = client_options(settings)
    assert (
        options["sasl_mechanism"] == "SCRAM-SHA-512" and options["sasl_plain_password"] == "kafka-Secret-99"
    )
    assert options["ssl_context"].check_hostname
    monkeypatch.setenv("KAFKA_SSL_CAFILE", "/nonexistent/ca.pem")
    with pytest.raises(SettingsError) as missing:
        load(KafkaSettings)
    assert "KAFKA_SSL_CAFILE" in str(missing.value) and "kafka-Secret-99" not in str(missing.value)
