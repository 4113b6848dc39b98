"""OAuth access tokens as callers: a bearer token (minted by MemoryHub's own authorization server,
django-oauth-toolkit) becomes an `Access` that the runner checks like an API key's.

What a token reaches is the consent of its (user, application) (`access.models.OAuthConsent`: the
namespaces the user chose on the consent page), intersected at every use with what operators still
allow the user (`selectors.allowed_grants`): narrowing a user's allowances narrows their connected
apps at once, without touching consents.

A token is refused (`InvalidToken`, 401 `invalid_token`) when it is unknown (revoking deletes it),
expired, lacks the `mcp` scope, belongs to an inactive user, has no consent row, or is not bound to
this server: RFC 8707, every entry of `token.resource` must have the request's origin (the
authorization server binds every token it mints to `<origin>/mcp`; a token bound to nothing, or to
another server, is refused).

Identity of an OAuth caller (no API key): `key_prefix` is `oauth:<first 10 characters of the
client_id>`, so history (`key:oauth:…`) and audit records show which connected app wrote;
`oauth_application_id` binds MCP sessions and the rate-limit bucket to the (user, app) pair, which
outlives the hourly tokens a client refreshes; `oauth_token_id` lets a long-lived stream see its
token revoked (`token_state`).

No cache: like API keys (access/authentication.py), each request looks its token up (one indexed
query on the token checksum, joined with user and application) and its consent and allowances (two
small indexed queries), so a revoked token fails on its next request, in every process.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from django.utils import timezone
from oauth2_provider.models import get_access_token_model
from oauth2_provider.settings import oauth2_settings

from access import selectors
from access.exceptions import InvalidToken
from access.models import OAuthConsent
from access.permissions import Access, Grant, intersect

SCOPE = "mcp"
RESOURCE_PATH = "/mcp"
# An access token's key_prefix: "oauth:" and the start of its client_id (AuditEvent.key_prefix
# holds 16 characters; DOT's generated client ids are 40 random characters).
KEY_PREFIX = "oauth:"
CLIENT_ID_CHARACTERS = 10
_DEFAULT_PORTS = {"http": 80, "https": 443}


def key_prefix_for(client_id: str) -> str:
    """How history and audit records name a connected app: `oauth:<client_id[:10]>`."""
    return f"{KEY_PREFIX}{client_id[:CLIENT_ID_CHARACTERS]}"


def resource_for(origin: str) -> str:
    """This server's protected resource (RFC 8707 / RFC 9728) as seen from `origin`."""
    return f"{origin}{RESOURCE_PATH}"


def _origin_of(uri: object) -> tuple[str, str, int | None] | None:
    if not isinstance(uri, str):
        return None
    parts = urlsplit(uri)
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


def bound_here(resources: list[str] | None, origin: str) -> bool:
    """The agreed RFC 8707 rule: a token is for this server when it names at least one resource and
    every resource it names is on the request's origin (scheme, host and port)."""
    here = _origin_of(origin)
    return bool(resources) and here is not None and all(_origin_of(uri) == here for uri in resources or ())


def _load(raw: str) -> object | None:
    # DOT's own lookup (by the token's SHA-256 checksum, which works whether or not the token is
    # stored hashed at rest), with user and application in the same query.
    validator = oauth2_settings.OAUTH2_VALIDATOR_CLASS()
    return validator._load_access_token(raw)


def access_for_token(raw: str, *, origin: str, surface: str = "") -> Access:
    """The `Access` of the OAuth access token `raw` presented at `origin` (scheme://host[:port] of
    the request). Raises InvalidToken when the token may not be used here (see the module)."""
    token = _load(raw) if raw else None
    if token is None:
        raise InvalidToken()
    user, application = token.user, token.application  # type: ignore[attr-defined]
    if (
        not token.is_valid([SCOPE])  # type: ignore[attr-defined]
        or user is None
        or application is None
        or not user.is_active
    ):
        raise InvalidToken()
    if not bound_here(token.resource, origin):  # type: ignore[attr-defined]
        raise InvalidToken(InvalidToken.WRONG_RESOURCE)
    consent = OAuthConsent.objects.filter(user_id=user.pk, application_id=application.pk).only("grants").first()
    if consent is None:
        raise InvalidToken()
    return Access(
        grants=intersect(consent.to_grants(), selectors.allowed_grants(user)),
        user_id=user.pk,
        key_prefix=key_prefix_for(application.client_id),
        surface=surface,
        oauth_application_id=application.pk,
        oauth_token_id=token.pk,  # type: ignore[attr-defined]
    )


def consented_grants(user_id: int, application_id: int) -> tuple[Grant, ...]:
    """What the user's consent lets the app reach today (the consent within current allowances)."""
    consent = OAuthConsent.objects.filter(user_id=user_id, application_id=application_id).select_related("user").first()
    if consent is None:
        return ()
    return intersect(consent.to_grants(), selectors.allowed_grants(consent.user))


def token_state(token_id: int) -> tuple[bool, dt.datetime | None]:
    """(usable, expires_at) of an access token by id, for streams that outlive a request: unusable
    once revoked (deleted), expired, or its user deactivated."""
    row = get_access_token_model().objects.filter(pk=token_id).values_list("expires", "user__is_active").first()
    if row is None:
        return False, None
    expires, active = row
    return bool(active) and expires is not None and expires > timezone.now(), expires
