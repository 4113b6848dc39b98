"""OAuth access tokens on the REST and MemOS edges, through the whole Django stack (real SQLite, the
Django test client): accepted as `Authorization: Bearer`, reaching exactly their consent within
the user's allowances, checked by the same runner as keys; refused with 401 and a Bearer
challenge (`error="invalid_token"`) when unknown, expired, revoked, for another resource, ...

Tokens are DOT rows made here as the authorization server would make them (bound to
`http://testserver/mcp`); the browser flow that mints them is tested end to end elsewhere.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.test import Client, override_settings
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, set_token_value

from access import oauth
from access.exceptions import InvalidToken, NamespaceForbidden
from access.models import NamespaceAllowance, OAuthConsent
from access.operations import perform
from access.permissions import Grant, Permission, intersect
from memory.services import NewMemory

pytestmark = pytest.mark.django_db

ORIGIN = "http://testserver"
RESOURCE = f"{ORIGIN}/mcp"
METADATA = f'resource_metadata="{ORIGIN}/.well-known/oauth-protected-resource/mcp"'
NOTES = "org:alice:notes"


@pytest.fixture
def alice() -> AbstractUser:
    """A user whose operator lets her grant write on org:alice:* (she has no API key)."""
    user = get_user_model().objects.create_user(username="alice", password="x")
    NamespaceAllowance.objects.create(user=user, pattern="org:alice:*", permission="write")
    return user


def app(name: str = "Claude") -> Application:
    return Application.objects.create(
        name=name,
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://claude.ai/api/mcp/auth_callback",
        client_secret="",
        hash_client_secret=False,
    )


def mint(
    user: AbstractUser,
    grants: list[list[str]] | None = None,
    *,
    application: Application | None = None,
    resource: list[str] | None = None,
    expires_in: int = 3600,
    scope: str = "mcp",
) -> tuple[str, AccessToken]:
    """A consent for (user, application) and an access token for it, as the authorization server
    stores them; the raw token."""
    application = application or app()
    OAuthConsent.objects.update_or_create(
        user=user,
        application=application,
        defaults={"grants": grants if grants is not None else [["org:alice:*", "write"]]},
    )
    raw = secrets.token_urlsafe(30)
    token = AccessToken(
        user=user,
        application=application,
        expires=timezone.now() + dt.timedelta(seconds=expires_in),
        scope=scope,
        resource=[RESOURCE] if resource is None else resource,
    )
    set_token_value(token, raw)
    token.save()
    return raw, token


def bearer(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def post(client: Client, route: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post(route, json.dumps(body), content_type="application/json", **headers)


def write(client: Client, raw: str, namespace: str = NOTES, text: str = "the vault code is 1234") -> Any:
    return post(client, "/v1/memory/write", {"namespace": namespace, "text": text}, **bearer(raw))


def assert_invalid_token(response: Any, description: str = InvalidToken.INVALID) -> None:
    assert response.status_code == 401, response.content
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith('ApiKey realm="memoryhub", Bearer ')
    assert 'error="invalid_token"' in challenge
    assert f'error_description="{description}"' in challenge
    assert METADATA in challenge
    assert response.json()["error"] == {"code": "unauthorized", "message": description}


# --- accepted, within its consent -----------------------------------------------------------------


def test_a_token_writes_and_reads_in_its_consented_namespace(client: Client, alice: AbstractUser) -> None:
    raw, token = mint(alice)
    written = write(client, raw)
    assert written.status_code == 200, written.content
    found = post(client, "/v1/memory/search", {"namespace": NOTES, "query": "vault code"}, **bearer(raw))
    assert found.status_code == 200, found.content
    assert [hit["text"] for hit in found.json()["results"]] == ["the vault code is 1234"]

    # The history names the connected app (its client_id's start) and the user, through REST.
    history = post(client, "/v1/memory/history", {"id": written.json()["id"]}, **bearer(raw))
    assert history.status_code == 200, history.content
    (version,) = history.json()["versions"]
    assert version["key"] == f"key:oauth:{token.application.client_id[:10]}"
    assert version["surface"] == "rest"
    assert version["userId"] == alice.pk


def test_a_token_is_refused_outside_its_consent_like_a_key(client: Client, alice: AbstractUser) -> None:
    raw, _ = mint(alice, [["org:alice:notes", "read"]])
    refused = write(client, raw)
    assert refused.status_code == 403, refused.content
    assert refused.json()["error"]["code"] == "forbidden"
    elsewhere = post(client, "/v1/memory/search", {"namespace": "org:bob:notes", "query": "x"}, **bearer(raw))
    assert elsewhere.status_code == 403
    # MemOS' edge: the same runner, its own envelope.
    memos = post(
        client,
        "/product/add",
        {"user_id": "u1", "messages": "bob was here", "writable_cube_ids": ["org:bob:notes"]},
        **bearer(raw),
    )
    assert memos.status_code == 403, memos.content


def test_a_token_works_on_the_memos_edge(client: Client, alice: AbstractUser) -> None:
    raw, _ = mint(alice)
    added = post(
        client,
        "/product/add",
        {"user_id": "u1", "messages": "tea at noon", "writable_cube_ids": [NOTES]},
        **bearer(raw),
    )
    assert added.status_code == 200, added.content


def test_the_runner_checks_a_tokens_access_like_a_keys(alice: AbstractUser) -> None:
    raw, token = mint(alice)
    access = oauth.access_for_token(raw, origin=ORIGIN, surface="mcp")
    assert access.user_id == alice.pk
    assert access.key_id is None
    assert access.grants == (Grant("org:alice:*", Permission.WRITE),)
    assert access.oauth_application_id == token.application_id
    assert access.oauth_token_id == token.pk
    perform(access, "memory_write", namespace=NOTES, memories=[NewMemory(text="ok")])
    with pytest.raises(NamespaceForbidden):
        perform(access, "memory_write", namespace="org:bob:notes", memories=[NewMemory(text="no")])


# --- what operators still allow, at each use ---------------------------------------------------------


def test_a_user_who_lost_the_allowance_loses_it_for_their_apps_at_once(client: Client, alice: AbstractUser) -> None:
    raw, token = mint(alice)
    assert write(client, raw).status_code == 200
    NamespaceAllowance.objects.filter(user=alice).update(permission="read")
    assert write(client, raw).status_code == 403  # write is gone ...
    assert oauth.consented_grants(alice.pk, token.application_id) == (Grant("org:alice:*", Permission.READ),)
    assert post(client, "/v1/memory/search", {"namespace": NOTES, "query": "x"}, **bearer(raw)).status_code == 200
    NamespaceAllowance.objects.filter(user=alice).delete()
    assert post(client, "/v1/memory/search", {"namespace": NOTES, "query": "x"}, **bearer(raw)).status_code == 403


def test_consent_and_allowances_intersect_both_ways() -> None:
    write_, read = Permission.WRITE, Permission.READ
    allowed = [Grant("user:alice:*", write_), Grant("org:alice:*", read), Grant("org:shared:docs", write_)]
    consent = [Grant("org:alice:notes", write_), Grant("org:*", write_), Grant("org:bob:*", read)]
    assert intersect(consent, allowed) == (
        Grant("org:alice:*", read),  # an allowance inside a broader consent grant, capped
        Grant("org:alice:notes", read),  # a consent grant inside an allowance, capped
        Grant("org:shared:docs", write_),
    )
    assert intersect(consent, [Grant("*", write_)]) == tuple(sorted(consent, key=lambda g: g.pattern))
    assert intersect([], allowed) == ()


# --- refused: 401 invalid_token, nothing done -----------------------------------------------------------


def test_garbage_and_unknown_tokens_are_invalid(client: Client, alice: AbstractUser) -> None:
    assert_invalid_token(write(client, "garbage"))
    assert_invalid_token(write(client, secrets.token_urlsafe(30)))


def test_an_expired_token_is_invalid(client: Client, alice: AbstractUser) -> None:
    raw, _ = mint(alice, expires_in=-1)
    assert_invalid_token(write(client, raw))


def test_a_token_revoked_at_the_revocation_endpoint_stops_at_once(client: Client, alice: AbstractUser) -> None:
    raw, token = mint(alice)
    assert write(client, raw).status_code == 200
    revoked = client.post("/oauth/revoke_token/", {"token": raw, "client_id": token.application.client_id})
    assert revoked.status_code == 200, revoked.content
    assert not AccessToken.objects.filter(pk=token.pk).exists()
    assert_invalid_token(write(client, raw, text="after revocation"))


def test_a_deleted_token_or_consent_stops_at_once(client: Client, alice: AbstractUser) -> None:
    raw, token = mint(alice)
    OAuthConsent.objects.filter(user=alice).delete()  # what revoking the app does, with the tokens
    assert_invalid_token(write(client, raw))
    raw, token = mint(alice)
    token.delete()
    assert_invalid_token(write(client, raw))


@pytest.mark.parametrize(
    "resource",
    [
        ["https://elsewhere.example/mcp"],
        [RESOURCE, "https://elsewhere.example/mcp"],
        ["https://testserver/mcp"],  # another scheme is another origin
        ["http://testserver:8080/mcp"],
        [],  # bound to nothing: this server binds every token it mints
    ],
)
def test_a_token_for_another_resource_is_invalid(client: Client, alice: AbstractUser, resource: list[str]) -> None:
    raw, _ = mint(alice, resource=resource)
    assert_invalid_token(write(client, raw), InvalidToken.WRONG_RESOURCE)


def test_a_token_for_this_origin_on_another_path_is_accepted(client: Client, alice: AbstractUser) -> None:
    # The agreed rule: the origin decides (the same consent reaches REST, MemOS and MCP alike).
    raw, _ = mint(alice, resource=[ORIGIN, "http://TESTSERVER:80/v1/"])
    assert write(client, raw).status_code == 200


def test_an_inactive_user_or_a_wrong_scope_makes_the_token_invalid(client: Client, alice: AbstractUser) -> None:
    raw, _ = mint(alice, scope="read")
    assert_invalid_token(write(client, raw))
    raw, _ = mint(alice)
    alice.is_active = False
    alice.save()
    assert_invalid_token(write(client, raw))


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
def test_behind_a_tls_proxy_the_origin_is_https(client: Client, alice: AbstractUser) -> None:
    raw, _ = mint(alice, resource=["https://testserver/mcp"])
    assert write(client, raw).status_code == 401
    # What a TLS-terminating proxy passes on: the client's Host and the scheme it received.
    forwarded = {"HTTP_HOST": "testserver", "HTTP_X_FORWARDED_PROTO": "https"}
    proxied = post(client, "/v1/memory/write", {"namespace": NOTES, "text": "x"}, **forwarded, **bearer(raw))
    assert proxied.status_code == 200, proxied.content
    missing = client.get("/v1/memory/banks/list", **forwarded)
    assert (
        'resource_metadata="https://testserver/.well-known/oauth-protected-resource/mcp"' in missing["WWW-Authenticate"]
    )


def test_a_request_without_credentials_gets_both_challenges(client: Client) -> None:
    for response in (client.get("/v1/memory/banks/list"), post(client, "/product/search", {"query": "x"})):
        assert response.status_code == 401
        challenge = response["WWW-Authenticate"]
        assert challenge == f'ApiKey realm="memoryhub", Bearer scope="mcp",{METADATA}'


def test_api_keys_keep_working_as_bearer_and_a_bad_key_is_a_bad_key(client: Client, alice_key: Any) -> None:
    assert client.get("/v1/memory/banks/list", HTTP_AUTHORIZATION=f"Bearer {alice_key.secret}").status_code == 200
    bad = client.get("/v1/memory/banks/list", HTTP_AUTHORIZATION="Bearer mh_00000000_" + "a" * 43)
    assert bad.status_code == 401
    assert "invalid_token" not in bad["WWW-Authenticate"]
    # Only `Authorization: Bearer` carries OAuth tokens: a non-key in X-API-Key is a bad key.
    assert "invalid_token" not in client.get("/v1/memory/banks/list", HTTP_X_API_KEY="garbage")["WWW-Authenticate"]


@override_settings(MEMORYHUB_RATE_LIMIT={"PER_MINUTE": 1, "BURST": 1})
def test_the_rate_limit_is_per_user_and_app_across_refreshed_tokens(client: Client, alice: AbstractUser) -> None:
    application = app()
    first, _ = mint(alice, application=application)
    refreshed, _ = mint(alice, application=application)
    assert client.get("/v1/memory/banks/list", **bearer(first)).status_code == 200
    limited = client.get("/v1/memory/banks/list", **bearer(refreshed))
    assert limited.status_code == 429
    other, _ = mint(alice, application=app("ChatGPT"))
    assert client.get("/v1/memory/banks/list", **bearer(other)).status_code == 200


# --- protected-resource metadata -------------------------------------------------------------------------


def test_the_protected_resource_metadata_names_mcp_and_this_server(client: Client) -> None:
    path_form = client.get("/.well-known/oauth-protected-resource/mcp").json()
    assert path_form["resource"] == RESOURCE
    assert path_form["authorization_servers"] == [ORIGIN]
    assert path_form["scopes_supported"] == ["mcp"]
    # The root form describes the whole origin (RFC 9728 §3.3: the resource its URL was built
    # from); a token bound to it is accepted too (the origin rule), and the MCP SDK, which tries
    # the path form first, accepts either (its resource check is a prefix match).
    root = client.get("/.well-known/oauth-protected-resource").json()
    assert root["resource"] == ORIGIN
    assert root["authorization_servers"] == [ORIGIN]


# --- MCP sessions of an OAuth caller ------------------------------------------------------------------------


def test_an_oauth_session_belongs_to_its_user_and_app(alice: AbstractUser) -> None:
    from access import services
    from mcp_endpoint import protocol, sessions

    key = services.api_key_create(owner=alice, name="her key", grants=[("org:alice:*", "write")], source="command").key

    application = app()
    first, _ = mint(alice, application=application)
    refreshed, _ = mint(alice, application=application)
    other, _ = mint(alice, application=app("ChatGPT"))
    as_first = oauth.access_for_token(first, origin=ORIGIN)
    session = sessions.open_session(
        access=as_first, connection=protocol.Connection(access=as_first, namespace=NOTES), transport="http"
    )
    assert sessions.load(session.session_id, oauth.access_for_token(refreshed, origin=ORIGIN)) is not None
    assert sessions.load(session.session_id, oauth.access_for_token(other, origin=ORIGIN)) is None
    assert sessions.load(session.session_id, key.to_access()) is None  # her key is another caller
    assert sessions.end_for_oauth_app(alice.pk, application.pk) == 1
    assert sessions.load(session.session_id, as_first) is None


def test_revoking_a_connected_app_ends_its_sessions(
    alice: AbstractUser, django_capture_on_commit_callbacks: Any
) -> None:
    from access import services
    from mcp_endpoint import protocol, sessions

    application = app()
    raw, _ = mint(alice, application=application)
    caller = oauth.access_for_token(raw, origin=ORIGIN)
    session = sessions.open_session(
        access=caller, connection=protocol.Connection(access=caller, namespace=NOTES), transport="http"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.oauth_revoke(user=alice, application=application, actor=alice, source="self-service")
    assert sessions.load(session.session_id, caller) is None
    with pytest.raises(InvalidToken):
        oauth.access_for_token(raw, origin=ORIGIN)
