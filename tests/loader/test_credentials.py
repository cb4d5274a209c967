"""Mailchimp credentials: the data center of API keys and OAuth tokens, and loading with either."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from services.loader.credentials import api_key_dc, resolve_mailchimp_credential, target_for
from shared.credentials import Credential, CredentialError, CredentialStore
from shared.events import MemberSynced
from shared.settings import KafkaSettings
from tests.helpers import REPO, running
from tests.loader.support import (
    API_KEY,
    CREDENTIAL,
    command,
    loader_service,
    produce_commands,
    served_mailchimp,
    wait_for_results,
    write_loader_files,
)

TOKEN = "f" * 32


def test_an_api_key_names_its_data_center() -> None:
    assert api_key_dc(API_KEY) == "us6"
    assert resolve_mailchimp_credential(f" {API_KEY}\n", oauth=False) == ("mailchimp_api_key", {"dc": "us6"})


@pytest.mark.parametrize(
    "bad", ["", "nodash", "0123456789abcdef0123456789abcdef", "short-us6", API_KEY + "x!"]
)
def test_a_malformed_key_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ValueError) as raised:
        resolve_mailchimp_credential(bad, oauth=False)
    assert not bad.strip() or bad not in str(raised.value)


def test_an_oauth_token_is_resolved_once_through_the_metadata_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with served_mailchimp(oauth_tokens={TOKEN: "us6"}) as mc:
        monkeypatch.setenv("MLC_MAILCHIMP_OAUTH_METADATA_URL", f"{mc.server.url}/oauth2/metadata")
        kind, meta = resolve_mailchimp_credential(TOKEN, oauth=True)
        with pytest.raises(ValueError, match="refused the token") as refused:
            resolve_mailchimp_credential("0" * 32, oauth=True)
    assert kind == "mailchimp_oauth"
    assert meta["dc"] == "us6" and meta["api_endpoint"] == f"{mc.server.url}/us6"
    assert "0" * 32 not in str(refused.value)


def test_a_target_never_shows_its_secret() -> None:
    credential = Credential("main", "mailchimp_api_key", {"dc": "us6"}, {"secret": SecretStr(API_KEY)}, "")
    target = target_for(credential, "https://{dc}.api.mailchimp.com/3.0")
    assert target.base_url == "https://us6.api.mailchimp.com/3.0"
    assert API_KEY not in repr(target) and target.authorization.startswith("Basic ")
    oauth = Credential("o", "mailchimp_oauth", {}, {"secret": SecretStr(TOKEN)}, "")
    with pytest.raises(CredentialError, match="no data center"):
        target_for(oauth, "https://{dc}.api.mailchimp.com/3.0")


def test_the_cli_stores_an_oauth_credential_with_its_data_center(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    store = tmp_path / "credentials.json"
    with served_mailchimp(oauth_tokens={TOKEN: "us6"}) as mc:
        env = {
            "MLC_MASTER_KEY": key,
            "MLC_CREDENTIALS_FILE": str(store),
            "MLC_MAILCHIMP_OAUTH_METADATA_URL": f"{mc.server.url}/oauth2/metadata",
            "PATH": "/usr/bin:/bin",
        }
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "services.cli",
                "credentials",
                "set-mailchimp",
                "mc-oauth",
                "--oauth",
                "--secret-stdin",
            ],
            input=TOKEN + "\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    stored = CredentialStore(store, [key]).get("mc-oauth")
    assert (stored.kind, stored.meta["dc"], stored.secret()) == ("mailchimp_oauth", "us6", TOKEN)
    assert TOKEN not in json.dumps(json.loads(store.read_text()))


async def test_the_loader_works_with_an_oauth_token(kafka: KafkaSettings, tmp_path: Path) -> None:
    files = write_loader_files(tmp_path)
    CredentialStore(files.credentials_file, [files.master_key]).set(
        CREDENTIAL, "mailchimp_oauth", {"secret": TOKEN}, {"dc": "us6"}
    )
    cmd = command("O1", "oauth@example.com")
    with served_mailchimp(oauth_tokens={TOKEN: "us6"}) as mc:
        await produce_commands(kafka, [cmd])
        async with running(loader_service(kafka, files, mc.api_base)):
            found = await wait_for_results(kafka, 1)
        assert mc.member("oauth@example.com") is not None
    assert isinstance(found[0], MemberSynced) and found[0].outcome == "created"


async def test_a_refused_key_fails_permanently_as_auth_failed(kafka: KafkaSettings, tmp_path: Path) -> None:
    files = write_loader_files(tmp_path, secret="f" * 32 + "-us6")
    cmd = command("A1", "auth@example.com")
    with served_mailchimp() as mc:
        await produce_commands(kafka, [cmd])
        async with running(loader_service(kafka, files, mc.api_base)):
            found = await wait_for_results(kafka, 1)
    assert (found[0].reason, found[0].permanent, found[0].http_status) == ("auth_failed", True, 401)  # type: ignore[union-attr]
