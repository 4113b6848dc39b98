"""The OAuth 2.1 authorization server (access/oauth_server.py, web/oauth.py) over plain HTTP.

Everything a client does is done here as a client would: register through DCR, send the user's
browser (the test client, signed in) to /oauth/authorize/ with a real PKCE pair, post the consent
form the page rendered, exchange the code at /oauth/token/. Each refusal asserts the OAuth error
the RFCs name and that nothing was granted (no token, no consent).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import http.server
import ipaddress
import json
import re
import secrets
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client, override_settings
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken

from access import services
from access.models import AuditEvent, OAuthConsent
from tests.conftest import PASSWORD

ORIGIN = "http://testserver"  # the Django test client's
RESOURCE = f"{ORIGIN}/mcp"
REDIRECT = "http://127.0.0.1:33418/callback"
pytestmark = pytest.mark.django_db


# --- a client's side of the exchanges ---------------------------------------------------------------


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def register(client: Client, **metadata: Any) -> Any:
    body = {
        "client_name": "Test Connector",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }
    body.update(metadata)
    return client.post("/oauth/register/", json.dumps(body), content_type="application/json")


def registered(client: Client, **metadata: Any) -> str:
    response = register(client, **metadata)
    assert response.status_code == 201, response.content
    return str(response.json()["client_id"])


def authorize_url(client_id: str, challenge: str, *, redirect_uri: str = REDIRECT, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-123",
        "scope": "mcp",
        "resource": RESOURCE,
    }
    params.update(extra)
    return "/oauth/authorize/?" + urlencode({k: v for k, v in params.items() if v is not None})


def form_fields(page: str) -> dict[str, str]:
    """The hidden fields and current values of the consent form, as a browser would send them."""
    fields = {}
    for tag in re.findall(r"<input[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and ('type="hidden"' in tag or 'type="text"' in tag):
            fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    return fields


def consent(client: Client, url: str, choices: dict[str, str], *, button: str = "allow") -> Any:
    """Open the consent page, choose access per row (e.g. {"grant_0_permission": "write"}), press a button."""
    page = client.get(url)
    assert page.status_code == 200, page.content[:500]
    data = form_fields(page.content.decode())
    data.update(choices)
    data[button] = "on"
    return client.post("/oauth/authorize/", data)


def code_from(response: Any) -> str:
    assert response.status_code == 302, response.content[:500]
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query.get("state") == ["st-123"]
    assert "code" in query, response["Location"]
    return query["code"][0]


def error_from(response: Any) -> str:
    assert response.status_code == 302, response.content[:500]
    assert response["Location"].startswith(REDIRECT)
    return parse_qs(urlsplit(response["Location"]).query)["error"][0]


def exchange(client: Client, client_id: str, code: str, verifier: str, **extra: str) -> Any:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": client_id,
        "code_verifier": verifier,
        "resource": RESOURCE,
    }
    data.update(extra)
    return Client().post("/oauth/token/", {k: v for k, v in data.items() if v is not None})


def refresh(client_id: str, refresh_token: str) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    return Client().post("/oauth/token/", data)


@pytest.fixture
def user(db) -> Any:
    return get_user_model().objects.create_user(username="dana", password=PASSWORD)


@pytest.fixture
def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def full_flow(browser: Client, client_id: str, choices: dict[str, str] | None = None) -> dict[str, Any]:
    verifier, challenge = pkce()
    code = code_from(consent(browser, authorize_url(client_id, challenge), choices or {"grant_0_permission": "write"}))
    response = exchange(browser, client_id, code, verifier)
    assert response.status_code == 200, response.content
    return dict(response.json())


def nothing_granted(client_id: str) -> None:
    assert not OAuthConsent.objects.filter(application__client_id=client_id).exists()
    assert not AccessToken.objects.filter(application__client_id=client_id, user__isnull=False).exists()
    assert not RefreshToken.objects.filter(application__client_id=client_id).exists()


# --- metadata and registration ---------------------------------------------------------------------


def test_metadata_advertises_what_is_supported(client: Client) -> None:
    data = client.get("/.well-known/oauth-authorization-server").json()
    assert data["issuer"] == ORIGIN
    assert data["authorization_endpoint"] == f"{ORIGIN}/oauth/authorize/"
    assert data["token_endpoint"] == f"{ORIGIN}/oauth/token/"
    assert data["registration_endpoint"] == f"{ORIGIN}/oauth/register/"
    assert data["code_challenge_methods_supported"] == ["S256"]
    assert data["token_endpoint_auth_methods_supported"] == ["none"]
    assert data["response_types_supported"] == ["code"]
    assert data["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert data["client_id_metadata_document_supported"] is True


def test_registration_makes_a_public_client_and_is_audited(client: Client) -> None:
    response = register(client, redirect_uris=[REDIRECT, "http://localhost:8000/cb", "http://[::1]:1/cb"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body
    application = Application.objects.get(client_id=body["client_id"])
    assert application.client_type == Application.CLIENT_PUBLIC
    event = AuditEvent.objects.get(action="oauth.client_registered")
    assert event.detail["client_id"] == body["client_id"]
    assert event.detail["client_name"] == "Test Connector"


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"redirect_uris": ["http://example.com/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://example.com/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["javascript://127.0.0.1/x"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["http://127.0.0.1.example.com/cb"]}, "invalid_redirect_uri"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "invalid_client_metadata"),
        ({"grant_types": ["client_credentials"]}, "invalid_client_metadata"),
        ({"grant_types": ["implicit"]}, "invalid_client_metadata"),
    ],
)
def test_registration_refusals(client: Client, metadata: dict[str, Any], error: str) -> None:
    response = register(client, **metadata)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert not Application.objects.exists()
    assert not AuditEvent.objects.filter(action="oauth.client_registered").exists()


def test_https_redirect_uris_register(client: Client) -> None:
    assert register(client, redirect_uris=["https://claude.ai/api/mcp/auth_callback"]).status_code == 201


# --- the consent page and the happy path ---------------------------------------------------------------


def test_sign_in_first_then_back_to_the_consent_page(client: Client, user) -> None:
    client_id = registered(client)
    url = authorize_url(client_id, pkce()[1])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    signed_in = client.post(response["Location"], {"username": "dana", "password": PASSWORD})
    assert signed_in.status_code == 302
    assert signed_in["Location"] == url


def test_consent_page_shows_the_client_its_redirect_host_and_the_allowed_namespaces(browser: Client) -> None:
    client_id = registered(browser)
    page = browser.get(authorize_url(client_id, pkce()[1]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "Test Connector" in text
    assert '<strong class="redirect-host"><code>127.0.0.1:33418</code></strong>' in text
    assert '<label for="id_grant_0_permission" class="visually-hidden">Access to user:dana:*</label>' in text
    assert "read and write" in text
    assert ">Allow</button>" in text
    assert ">Deny</button>" in text


def test_the_consent_page_lets_its_form_end_at_the_clients_redirect_origin(browser: Client) -> None:
    # Browsers apply form-action to the redirect after a post: without the client's origin there,
    # Allow and Deny would stop at our page.
    page = browser.get(authorize_url(registered(browser), pkce()[1]))
    assert "form-action 'self' http://127.0.0.1:33418;" in page["Content-Security-Policy"]
    assert "form-action 'self';" in browser.get("/apps/")["Content-Security-Policy"]


def test_allow_saves_the_consent_and_issues_a_token_bound_to_this_server(browser: Client, user) -> None:
    client_id = registered(browser)
    tokens = full_flow(browser, client_id, {"grant_0_pattern": "user:dana:notes", "grant_0_permission": "write"})
    assert tokens["token_type"] == "Bearer"
    assert tokens["refresh_token"]
    assert tokens["expires_in"] <= 3600
    consent_row = OAuthConsent.objects.get(user=user, application__client_id=client_id)
    assert consent_row.grants == [["user:dana:notes", "write"]]
    access = AccessToken.objects.get(user=user, application__client_id=client_id)
    assert access.resource == [RESOURCE]
    assert access.allows_audience(RESOURCE)
    event = AuditEvent.objects.get(action="oauth.authorized")
    assert event.subject == "dana"
    assert event.source == "consent"
    assert event.detail["client_id"] == client_id
    assert event.detail["grants"] == ["user:dana:notes=write"]


def test_a_request_without_resource_is_bound_to_this_servers_mcp(browser: Client, user) -> None:
    client_id = registered(browser)
    verifier, challenge = pkce()
    url = authorize_url(client_id, challenge, resource=None)
    code = code_from(consent(browser, url, {"grant_0_permission": "read"}))
    assert Grant.objects.get(code=code).resource == [RESOURCE]
    response = exchange(browser, client_id, code, verifier, resource=None)
    assert response.status_code == 200, response.content
    assert AccessToken.objects.get(user=user, application__client_id=client_id).resource == [RESOURCE]
    rotated = refresh(client_id, response.json()["refresh_token"])
    assert rotated.status_code == 200, rotated.content
    assert AccessToken.objects.get(
        token_checksum=hashlib.sha256(rotated.json()["access_token"].encode()).hexdigest()
    ).resource == [RESOURCE]


def test_consenting_again_replaces_the_grants(browser: Client, user) -> None:
    client_id = registered(browser)
    full_flow(browser, client_id, {"grant_0_permission": "write"})
    full_flow(browser, client_id, {"grant_0_pattern": "user:dana:work", "grant_0_permission": "read"})
    assert OAuthConsent.objects.get(user=user).grants == [["user:dana:work", "read"]]
    assert AuditEvent.objects.filter(action="oauth.authorized").count() == 2


def test_an_allowance_with_read_only_offers_no_write(browser: Client, user) -> None:
    services.allowance_set(user=user, pattern="team:x:*", permission="read", actor=None, source="command")
    client_id = registered(browser)
    page = browser.get(authorize_url(client_id, pkce()[1])).content.decode()
    row = page[page.index('name="grant_1_permission"') :]
    row = row[: row.index("</select>")]
    assert '"read"' in row
    assert '"write"' not in row
    # Forging write on it anyway is refused, and nothing is granted.
    response = consent(browser, authorize_url(client_id, pkce()[1]), {"grant_1_permission": "write"})
    assert response.status_code == 200
    assert "You may not grant" in response.content.decode()
    nothing_granted(client_id)


def test_allow_without_a_namespace_or_outside_the_allowances_grants_nothing(browser: Client) -> None:
    client_id = registered(browser)
    none_chosen = consent(browser, authorize_url(client_id, pkce()[1]), {})
    assert none_chosen.status_code == 200
    assert "choose at least one namespace" in none_chosen.content.decode()
    outside = consent(
        browser, authorize_url(client_id, pkce()[1]), {"grant_0_pattern": "user:bob:*", "grant_0_permission": "read"}
    )
    assert outside.status_code == 200
    assert "you may not grant read on &#x27;user:bob:*&#x27;" in outside.content.decode()
    nothing_granted(client_id)
    assert not Grant.objects.exists()


def test_deny_sends_access_denied(browser: Client) -> None:
    client_id = registered(browser)
    response = consent(browser, authorize_url(client_id, pkce()[1]), {"grant_0_permission": "write"}, button="deny")
    assert error_from(response) == "access_denied"
    nothing_granted(client_id)
    assert not Grant.objects.exists()


def test_a_consent_posted_by_another_site_is_refused(user) -> None:
    setup = Client()
    client_id = registered(setup)
    # The attacker's page posts the form straight to us with the victim's session cookie, but
    # cannot read the CSRF token of our page.
    victim = Client(enforce_csrf_checks=True)
    victim.force_login(user)
    _, challenge = pkce()
    data = {
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "state": "st-123",
        "scope": "mcp",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": RESOURCE,
        "grant_0_pattern": "user:dana:*",
        "grant_0_permission": "write",
        "allow": "on",
    }
    response = victim.post("/oauth/authorize/", data, HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403
    nothing_granted(client_id)
    assert not Grant.objects.exists()


# --- refusals --------------------------------------------------------------------------------------------


def test_unknown_client(browser: Client) -> None:
    response = browser.get(authorize_url("no-such-client", pkce()[1]))
    assert response.status_code == 400
    assert "<strong>invalid_request</strong>: Invalid client_id parameter value." in response.content.decode()
    assert "Location" not in response  # never redirected to an unverified URI
    token = Client().post(
        "/oauth/token/",
        {
            "grant_type": "authorization_code",
            "code": "x",
            "redirect_uri": REDIRECT,
            "client_id": "nope",
            "code_verifier": "v" * 43,
        },
    )
    assert token.status_code == 401
    assert token.json()["error"] == "invalid_client"


def test_redirect_uri_mismatch(browser: Client) -> None:
    client_id = registered(browser)
    response = browser.get(authorize_url(client_id, pkce()[1], redirect_uri="http://127.0.0.1:33418/other"))
    assert response.status_code == 400
    assert "Location" not in response
    assert "invalid_request" in response.content.decode()
    # At the token endpoint: a code issued for one redirect URI, exchanged with another.
    verifier, challenge = pkce()
    code = code_from(consent(browser, authorize_url(client_id, challenge), {"grant_0_permission": "write"}))
    token = exchange(browser, client_id, code, verifier, redirect_uri="http://127.0.0.1:33418/other")
    assert token.status_code == 400
    assert token.json()["error"] == "invalid_request"
    assert not AccessToken.objects.filter(user__isnull=False).exists()


def test_a_plain_http_redirect_registered_by_an_operator_is_refused_too(browser: Client) -> None:
    application = Application.objects.create(
        name="legacy",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="http://example.com/cb",
    )
    response = browser.get(authorize_url(application.client_id, pkce()[1], redirect_uri="http://example.com/cb"))
    assert response.status_code == 400
    assert "Location" not in response


def test_pkce_verifier_mismatch(browser: Client) -> None:
    client_id = registered(browser)
    _, challenge = pkce()
    code = code_from(consent(browser, authorize_url(client_id, challenge), {"grant_0_permission": "write"}))
    response = exchange(browser, client_id, code, pkce()[0])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.filter(user__isnull=False).exists()


def test_pkce_plain_and_missing_challenges_are_refused(browser: Client) -> None:
    client_id = registered(browser)
    verifier = secrets.token_urlsafe(48)
    plain = browser.get(authorize_url(client_id, verifier, code_challenge_method="plain"))
    assert error_from(plain) == "invalid_request"
    missing = browser.get(authorize_url(client_id, "", code_challenge=None, code_challenge_method=None))
    assert error_from(missing) == "invalid_request"
    nothing_granted(client_id)
    assert not Grant.objects.exists()


def test_a_replayed_code_is_refused_and_revokes_the_first_exchanges_tokens(browser: Client, user) -> None:
    client_id = registered(browser)
    verifier, challenge = pkce()
    code = code_from(consent(browser, authorize_url(client_id, challenge), {"grant_0_permission": "write"}))
    first = exchange(browser, client_id, code, verifier)
    assert first.status_code == 200
    replay = exchange(browser, client_id, code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # RFC 6749 §4.1.2: what the first exchange issued no longer works.
    assert not AccessToken.objects.filter(user=user).exists()
    assert refresh(client_id, first.json()["refresh_token"]).json()["error"] == "invalid_grant"


def test_a_refresh_token_used_twice_revokes_the_family(browser: Client, user) -> None:
    client_id = registered(browser)
    tokens = full_flow(browser, client_id)
    rotated = refresh(client_id, tokens["refresh_token"])
    assert rotated.status_code == 200
    assert rotated.json()["refresh_token"] != tokens["refresh_token"]
    reused = refresh(client_id, tokens["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.filter(user=user).exists()  # the rotated pair went too
    assert refresh(client_id, rotated.json()["refresh_token"]).json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "resource", ["https://other.example/mcp", "http://testserver:8080/mcp", "https://testserver/mcp"]
)
def test_a_resource_of_another_origin_is_refused(browser: Client, resource: str) -> None:
    client_id = registered(browser)
    verifier, challenge = pkce()
    at_authorize = browser.get(authorize_url(client_id, challenge, resource=resource))
    assert error_from(at_authorize) == "invalid_target"
    # The same in a tampered consent form (the resource is a hidden field).
    page = browser.get(authorize_url(client_id, challenge))
    data = form_fields(page.content.decode()) | {"resource": resource, "grant_0_permission": "write", "allow": "on"}
    assert error_from(browser.post("/oauth/authorize/", data)) == "invalid_target"
    nothing_granted(client_id)
    # At the token endpoint, for a code bound to this server.
    code = code_from(consent(browser, authorize_url(client_id, challenge), {"grant_0_permission": "write"}))
    token = exchange(browser, client_id, code, verifier, resource=resource)
    assert token.status_code == 400, (token.status_code, token.content[:3000])
    assert token.json()["error"] == "invalid_target"
    assert not AccessToken.objects.filter(user__isnull=False).exists()


def test_a_revoked_refresh_token_is_refused(browser: Client, user) -> None:
    client_id = registered(browser)
    tokens = full_flow(browser, client_id)
    services.oauth_revoke(user=user, application=Application.objects.get(client_id=client_id), source="self-service")
    assert refresh(client_id, tokens["refresh_token"]).json()["error"] == "invalid_grant"


# --- connected apps ----------------------------------------------------------------------------------------


def test_connected_apps_lists_and_revokes(browser: Client, user) -> None:
    client_id = registered(browser)
    full_flow(browser, client_id, {"grant_0_pattern": "user:dana:notes", "grant_0_permission": "write"})
    application = Application.objects.get(client_id=client_id)
    page = browser.get("/apps/").content.decode()
    assert "Test Connector" in page
    assert "127.0.0.1:33418" in page
    assert "user:dana:notes" in page
    assert 'href="/apps/"' in page  # the nav link
    confirm = browser.get(f"/apps/{application.pk}/revoke/")
    assert confirm.status_code == 200
    assert "Revoke access" in confirm.content.decode()
    assert OAuthConsent.objects.filter(user=user).exists()  # a GET changes nothing
    done = browser.post(f"/apps/{application.pk}/revoke/", {"confirm": "yes"})
    assert done.status_code == 302
    assert done["Location"] == "/apps/"
    nothing_granted(client_id)
    event = AuditEvent.objects.get(action="oauth.revoked")
    assert event.source == "self-service"
    assert event.actor_name == "dana"
    assert event.detail["access_tokens"] == 1
    assert "No app is connected" in browser.get("/apps/").content.decode()


def test_connected_apps_revoke_needs_the_form_and_is_only_for_ones_own(browser: Client, user) -> None:
    client_id = registered(browser)
    full_flow(browser, client_id)
    application = Application.objects.get(client_id=client_id)
    assert browser.post(f"/apps/{application.pk}/revoke/", {}).status_code == 302
    assert OAuthConsent.objects.filter(user=user).exists()  # no confirm: back to the question
    other = Client()
    other.force_login(get_user_model().objects.create_user(username="eve", password=PASSWORD))
    assert other.get(f"/apps/{application.pk}/revoke/").status_code == 404
    assert other.post(f"/apps/{application.pk}/revoke/", {"confirm": "yes"}).status_code == 404
    csrf = Client(enforce_csrf_checks=True)
    csrf.force_login(user)
    assert csrf.post(f"/apps/{application.pk}/revoke/", {"confirm": "yes"}).status_code == 403
    assert OAuthConsent.objects.filter(user=user).exists()


def test_operators_revoke_in_the_admin(browser: Client, user, root_key) -> None:
    client_id = registered(browser)
    full_flow(browser, client_id)
    admin = Client()
    admin.force_login(root_key.user)
    consent_row = OAuthConsent.objects.get(user=user)
    listing = admin.get("/admin/access/oauthconsent/")
    assert listing.status_code == 200
    assert "Test Connector" in listing.content.decode()
    response = admin.post(
        "/admin/access/oauthconsent/", {"action": "revoke", "_selected_action": [consent_row.pk]}, follow=True
    )
    assert response.status_code == 200
    nothing_granted(client_id)
    event = AuditEvent.objects.get(action="oauth.revoked")
    assert event.source == "admin"
    assert event.actor_name == root_key.user.username
    assert event.subject == "dana"


# --- client metadata documents -------------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def metadata_server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A real HTTPS server on 127.0.0.1 serving client metadata documents: {path: (status, body, type)}."""
    documents: dict[str, tuple[int, bytes, str]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body, content_type = documents.get(self.path, (404, b"{}", "application/json"))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    cert_path, key_path = _self_signed(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        yield {"base": base, "documents": documents, "ca": str(cert_path)}
    finally:
        server.shutdown()
        server.server_close()


def _document(client_id: str, **overrides: Any) -> bytes:
    body = {
        "client_id": client_id,
        "client_name": "Metadata Client",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    }
    body.update(overrides)
    return json.dumps(body).encode()


def test_a_metadata_document_on_a_private_address_is_not_fetched(browser: Client, metadata_server) -> None:
    client_id = f"{metadata_server['base']}/client.json"
    metadata_server["documents"]["/client.json"] = (200, _document(client_id), "application/json")
    response = browser.get(authorize_url(client_id, pkce()[1]))
    assert response.status_code == 400
    assert "Location" not in response
    assert not Application.objects.filter(client_id=client_id).exists()


def test_a_metadata_document_names_the_client_on_the_consent_page(browser: Client, metadata_server, user) -> None:
    client_id = f"{metadata_server['base']}/client.json"
    metadata_server["documents"]["/client.json"] = (200, _document(client_id), "application/json")
    with override_settings(
        MEMORYHUB_OAUTH_CIMD_ALLOW_HOSTS=["127.0.0.1"], MEMORYHUB_OAUTH_CIMD_CA_FILE=metadata_server["ca"]
    ):
        page = browser.get(authorize_url(client_id, pkce()[1]))
        assert page.status_code == 200, page.content[:500]
        text = page.content.decode()
        assert "Metadata Client" in text
        assert client_id in text
        assert "127.0.0.1:33418" in text
        tokens = full_flow(browser, client_id)
    assert tokens["access_token"]
    assert Application.objects.get(client_id=client_id).registration_source == "cimd"
    event = AuditEvent.objects.get(action="oauth.client_registered")
    assert event.source == "metadata-document"
    assert event.detail["client_id"] == client_id


@pytest.mark.parametrize(
    ("path", "entry", "why"),
    [
        ("/big.json", (200, b'{"client_name": "' + b"x" * 20000 + b'"}', "application/json"), "too large"),
        ("/html.json", (200, b"<html></html>", "text/html"), "not JSON"),
        ("/gone.json", (404, b"{}", "application/json"), "not found"),
        ("/http-redirect.json", None, "plain http redirect URI"),
        ("/other-id.json", None, "client_id of another URL"),
    ],
)
def test_metadata_document_limits_hold_for_allowed_hosts_too(
    browser: Client, metadata_server, path, entry, why
) -> None:
    client_id = f"{metadata_server['base']}{path}"
    if path == "/http-redirect.json":
        entry = (200, _document(client_id, redirect_uris=["http://example.com/cb"]), "application/json")
    if path == "/other-id.json":
        entry = (200, _document(f"{metadata_server['base']}/else.json"), "application/json")
    metadata_server["documents"][path] = entry
    with override_settings(
        MEMORYHUB_OAUTH_CIMD_ALLOW_HOSTS=["127.0.0.1"], MEMORYHUB_OAUTH_CIMD_CA_FILE=metadata_server["ca"]
    ):
        response = browser.get(authorize_url(client_id, pkce()[1]))
    assert response.status_code == 400, why
    assert not Application.objects.filter(client_id=client_id).exists()


def test_a_metadata_document_needs_a_trusted_certificate(browser: Client, metadata_server) -> None:
    client_id = f"{metadata_server['base']}/client.json"
    metadata_server["documents"]["/client.json"] = (200, _document(client_id), "application/json")
    cache.clear()
    with override_settings(MEMORYHUB_OAUTH_CIMD_ALLOW_HOSTS=["127.0.0.1"]):  # no CA: the system's
        response = browser.get(authorize_url(client_id, pkce()[1]))
    assert response.status_code == 400
    assert not Application.objects.filter(client_id=client_id).exists()
