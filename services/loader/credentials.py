"""Mailchimp credentials: where a key or token sends requests, and how it authenticates.

An API key names its data center in its ``-usN`` suffix. An OAuth token does not: the metadata
endpoint says which data center it belongs to, once, when the operator stores it
(``ml-connector credentials set-mailchimp --oauth``); the answer is kept in the credential's
clear-text metadata so the loader never calls the metadata endpoint at run time.

Nothing here puts a secret into an exception, a log line or a repr.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field

import httpx

from shared.credentials import Credential, CredentialError, CredentialKind
from shared.settings import MailchimpSettings, load

__all__ = [
    "Target",
    "api_key_dc",
    "key_id",
    "resolve_mailchimp_credential",
    "target_for",
]

_API_KEY = re.compile(r"^[0-9a-f]{32}-([a-z]{2,4}[0-9]{1,3})$")
_DC = re.compile(r"^[a-z]{2,4}[0-9]{1,3}$")


def api_key_dc(key: str) -> str:
    """The data center of an API key (``<32 hex>-<dc>``); ValueError, without the key, otherwise."""
    match = _API_KEY.match(key.strip())
    if match is None:
        raise ValueError(
            "not a Mailchimp API key: expected 32 hexadecimal characters, a dash and the data center "
            "(for example ...-us6)"
        )
    return match.group(1)


def key_id(secret: str) -> str:
    """A short, non-reversible identity of a key or token (limiter key; safe to log)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:16]


def _oauth_metadata(token: str, settings: MailchimpSettings) -> dict[str, str]:
    url = settings.oauth_metadata_url
    try:
        response = httpx.get(
            url,
            headers={"Authorization": f"OAuth {token}", "Accept": "application/json"},
            timeout=min(settings.timeout_seconds, 30.0),
        )
    except httpx.HTTPError as exc:
        raise ValueError(f"cannot reach the OAuth metadata endpoint {url}: {type(exc).__name__}") from None
    if response.status_code in (401, 403):
        raise ValueError(f"the OAuth metadata endpoint refused the token (HTTP {response.status_code})")
    if response.status_code != 200:
        raise ValueError(f"the OAuth metadata endpoint answered HTTP {response.status_code}")
    try:
        doc = response.json()
    except ValueError:
        raise ValueError("the OAuth metadata endpoint did not answer JSON") from None
    dc = doc.get("dc") if isinstance(doc, dict) else None
    if not isinstance(dc, str) or not _DC.match(dc):
        raise ValueError("the OAuth metadata answer has no valid data center ('dc')")
    meta = {"dc": dc}
    for name in ("api_endpoint", "accountname"):
        value = doc.get(name)
        if isinstance(value, str) and value:
            meta[name] = value
    return meta


def resolve_mailchimp_credential(secret: str, oauth: bool) -> tuple[CredentialKind, dict[str, str]]:
    """The kind and clear metadata to store with a Mailchimp secret (``credentials set-mailchimp``).

    API keys are checked offline; an OAuth token is sent once to ``MLC_MAILCHIMP_OAUTH_METADATA_URL``
    with ``Authorization: OAuth <token>`` to learn its data center and API endpoint.
    """
    secret = secret.strip()
    if not secret:
        raise ValueError("the key or token is empty")
    if not oauth:
        return "mailchimp_api_key", {"dc": api_key_dc(secret)}
    return "mailchimp_oauth", _oauth_metadata(secret, load(MailchimpSettings))


@dataclass(frozen=True)
class Target:
    """Where one credential's requests go: data center, API base, and the Authorization header."""

    credential: str
    key_id: str
    dc: str
    base_url: str
    authorization: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Target(credential={self.credential!r}, dc={self.dc!r}, base_url={self.base_url!r})"


def target_for(credential: Credential, api_base: str) -> Target:
    """Build the request target of a stored Mailchimp credential (CredentialError when unusable)."""
    secret = credential.secret()
    if credential.kind == "mailchimp_api_key":
        try:
            dc = api_key_dc(secret)
        except ValueError as exc:
            raise CredentialError(f"credential {credential.name!r}: {exc}") from None
        # Basic auth: any user name, the key as the password.
        authorization = "Basic " + base64.b64encode(f"anystring:{secret}".encode()).decode("ascii")
    elif credential.kind == "mailchimp_oauth":
        dc = credential.meta.get("dc", "")
        if not _DC.match(dc):
            raise CredentialError(
                f"credential {credential.name!r} has no data center; store it again with "
                "'ml-connector credentials set-mailchimp --oauth'"
            )
        authorization = f"Bearer {secret}"
    else:
        raise CredentialError(
            f"credential {credential.name!r} is a {credential.kind} credential, not Mailchimp"
        )
    return Target(
        credential=credential.name,
        key_id=key_id(secret),
        dc=dc,
        base_url=api_base.replace("{dc}", dc).rstrip("/"),
        authorization=authorization,
    )
