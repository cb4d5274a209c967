"""Which data center a request went to, and which credential it carries.

A key only works in its own data center (the ``-usN`` suffix): real clients derive the host from the key,
so a mismatch means a misconfigured client and gets 401 API Key Invalid, as Mailchimp answers it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass

from simulators.mailchimp import problems
from simulators.mailchimp.config import MailchimpSimConfig, dc_of_key
from simulators.mailchimp.stats import credential_label

__all__ = ["Credential", "authenticate", "host_dc", "oauth_token_from"]

_DC_LABEL = re.compile(r"^[a-z]+[0-9]+$")


@dataclass(frozen=True, slots=True)
class Credential:
    """An accepted API key or OAuth token, known only by its label."""

    label: str
    dc: str


def host_dc(host: str | None) -> str | None:
    """The dc of a ``usN.api.mailchimp.com``-style Host header (first label like ``us6``), else None."""
    if not host:
        return None
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    labels = name.split(".")
    if len(labels) > 1 and _DC_LABEL.match(labels[0]):
        return labels[0]
    return None


def _api_key(authorization: str) -> str | None:
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise problems.api_key_invalid() from None
        # Any user name; the password is the key.
        return decoded.partition(":")[2] or None
    if scheme == "apikey":
        return value.strip() or None
    return None


def oauth_token_from(authorization: str, scheme: str) -> str | None:
    given, _, value = authorization.strip().partition(" ")
    if given.lower() != scheme.lower():
        return None
    return value.strip() or None


def authenticate(
    headers: Mapping[str, str], dc: str, config: MailchimpSimConfig, oauth_tokens: Mapping[str, str]
) -> Credential:
    """The credential of an API call routed to ``dc``, or the 401 Mailchimp would answer."""
    authorization = headers.get("authorization", "")
    if not authorization.strip():
        raise problems.api_key_missing()
    token = oauth_token_from(authorization, "Bearer")
    if token is not None:
        token_dc = oauth_tokens.get(token)
        if token_dc is None or token_dc != dc:
            raise problems.api_key_invalid()
        return Credential(credential_label(token), dc)
    key = _api_key(authorization)
    if key is None:
        raise problems.api_key_missing()
    if key in config.disabled_api_keys:
        raise problems.api_key_disabled()
    if key not in config.api_keys or dc_of_key(key) != dc:
        raise problems.api_key_invalid()
    return Credential(credential_label(key), dc)
