"""The authorization server's own rules, on top of django-oauth-toolkit (DOT).

DOT does the OAuth protocol; this module narrows it to what MemoryHub promises (docs/remote-mcp.md):

- resource indicators (RFC 8707): every code and token is bound to this server's MCP resource
  `<origin>/mcp`. A `resource` of another origin is refused with `invalid_target`; a client
  that sends none gets `<origin>/mcp` (`MemoryHubOAuth2Validator`).
- redirect URIs (OAuth 2.1, RFC 8252): https, or plain http only to a loopback host (any port),
  never a fragment (`redirect_uri_problem`), at registration (DCR, client metadata documents) and
  again on every authorization request, whoever registered the client.
- registration (RFC 7591) makes public clients only (`token_endpoint_auth_method` "none") for the
  authorization-code grant, and is audited `oauth.client_registered`.
- client metadata documents: DOT's SSRF-hardened fetcher, with a documented escape hatch for
  tests and private deployments (`MetadataFetcher`).
- a replayed authorization code revokes what its first exchange issued (RFC 6749 §4.1.2).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from oauth2_provider import cimd
from oauth2_provider.models import get_application_model, get_refresh_token_model
from oauth2_provider.oauth2_backends import OAuthLibCore
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import dynamic_client_registration as dcr_views
from oauthlib.oauth2.rfc6749 import errors

from access import services

MCP_PATH = "/mcp"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# The request's origin, put among the oauthlib request's headers by `OAuthBackend`: the
# validator only sees oauthlib's request, which has the path but not the validated host.
ORIGIN_HEADER = "X_MEMORYHUB_ORIGIN"
# Codes already exchanged, for the code-replay rule (kept a little longer than a code lives).
USED_CODE_PREFIX = "oauth:used-code:"


def request_origin(request: HttpRequest) -> str:
    """scheme://host[:port] of `request`, the host checked against ALLOWED_HOSTS (and the scheme
    taken from the proxy header the settings trust)."""
    return request.build_absolute_uri("/").rstrip("/")


def mcp_resource(origin: str) -> str:
    """This server's MCP resource identifier (RFC 8707 / RFC 9728) for `origin`."""
    return f"{origin}{MCP_PATH}"


def _origin_of(uri: str) -> str | None:
    """scheme://host[:port] of an absolute URI, normalised (lower case, default port dropped)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def foreign_resources(resources: list[str], origin: str) -> list[str]:
    """The entries of `resources` that do not belong to this server (`origin`)."""
    mine = _origin_of(origin)
    return [r for r in resources if _origin_of(r) is None or _origin_of(r) != mine]


def redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` may not be a redirect URI, or None if it may: https, or http to a loopback host
    (127.0.0.1, [::1], localhost; any port, RFC 8252 §7.3), absolute, no fragment."""
    if "#" in uri:
        return "a redirect URI must not contain a fragment"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018  (an invalid port raises here)
    except ValueError:
        return "a redirect URI must be an absolute URI"
    if not parts.hostname:
        return "a redirect URI must be an absolute URI with a host"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        if parts.hostname.lower() in LOOPBACK_HOSTS:
            return None
        return "plain http is allowed only to a loopback address (127.0.0.1, [::1], localhost)"
    return f"the scheme {parts.scheme!r} is not allowed: use https, or http to a loopback address"


class OAuthBackend(OAuthLibCore):
    """DOT's backend, handing the validator the request's validated origin."""

    def extract_headers(self, request: HttpRequest) -> dict[str, Any]:
        headers: dict[str, Any] = super().extract_headers(request)
        headers[ORIGIN_HEADER] = request_origin(request)  # overrides anything a client could send
        return headers

    def create_token_response(self, request: HttpRequest) -> tuple[Any, dict[str, str], str, int]:
        uri, headers, body, status = super().create_token_response(request)
        # An error raised while the token is saved (e.g. `invalid_target`) reaches DOT outside
        # oauthlib's handler, which is what adds these; RFC 6749 §5.2 errors are JSON all the same.
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
        headers.setdefault("Cache-Control", "no-store")
        return uri, headers, body, status


def _target_error(request: Any, resources: list[str]) -> errors.CustomOAuth2Error:
    return errors.CustomOAuth2Error(
        error="invalid_target",
        description=f"The resource {resources[0]!r} is not this server's: tokens here are for this server's /mcp.",
        request=request,
    )


class MemoryHubOAuth2Validator(OAuth2Validator):
    """DOT's validator with MemoryHub's resource, redirect-URI and code-replay rules."""

    def _bind_resource(self, request: Any) -> None:
        """Refuse a `resource` of another origin; bind a request with none to `<origin>/mcp`."""
        origin = request.headers.get(ORIGIN_HEADER)
        if not origin:  # not through OAuthBackend: refuse rather than mint an unbound token
            raise errors.ServerError(description="origin unknown", request=request)
        resources = list(getattr(request, "resource", None) or [])
        foreign = foreign_resources(resources, origin)
        if foreign:
            raise _target_error(request, foreign)
        request.resource = resources or [mcp_resource(origin)]

    def _create_authorization_code(self, request: Any, code: Any, expires: Any = None) -> Any:
        self._bind_resource(request)
        return super()._create_authorization_code(request, code, expires)

    def _check_and_set_request_resource(self, request: Any) -> None:
        super()._check_and_set_request_resource(request)
        self._bind_resource(request)

    def validate_redirect_uri(self, client_id: str, redirect_uri: str, request: Any, *args: Any, **kwargs: Any) -> bool:
        # Checked on every authorization request, so a client registered before this rule, or by
        # an operator in the admin, cannot send a user's code to a plain-http site either.
        if redirect_uri_problem(redirect_uri) is not None:
            return False
        return bool(super().validate_redirect_uri(client_id, redirect_uri, request, *args, **kwargs))

    # --- code replay (RFC 6749 §4.1.2: "SHOULD revoke ... all tokens previously issued based on
    # that authorization code"). DOT deletes a code when it is exchanged, so a replay is just an
    # unknown code to it; we remember which token family each exchanged code produced.

    @staticmethod
    def _used_code_key(code: str) -> str:
        return USED_CODE_PREFIX + hashlib.sha256(code.encode()).hexdigest()

    def _create_refresh_token(self, request: Any, refresh_token_code: Any, access_token: Any, previous: Any) -> Any:
        token = super()._create_refresh_token(request, refresh_token_code, access_token, previous)
        request.memoryhub_token_family = str(token.token_family)
        return token

    def invalidate_authorization_code(self, client_id: str, code: str, request: Any, *args: Any, **kwargs: Any) -> None:
        super().invalidate_authorization_code(client_id, code, request, *args, **kwargs)
        family = getattr(request, "memoryhub_token_family", None)
        if family:
            # Long enough to outlive the code itself by far; after that the code is refused anyway.
            timeout = max(oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS * 10, 600)
            cache.set(self._used_code_key(code), family, timeout)

    def validate_code(self, client_id: str, code: str, client: Any, request: Any, *args: Any, **kwargs: Any) -> bool:
        if super().validate_code(client_id, code, client, request, *args, **kwargs):
            return True
        family = cache.get(self._used_code_key(code))
        if family:
            # The code was already exchanged: whoever holds it now may have stolen it, so what the
            # first exchange issued (the whole refresh family and its access tokens) stops working.
            get_refresh_token_model().revoke_family(family)  # also deletes the family's access tokens
            cache.delete(self._used_code_key(code))
        return False


# --- Registration (RFC 7591 / RFC 7592) ------------------------------------------------------------

ALLOWED_GRANT_TYPES = frozenset({"authorization_code", "refresh_token"})


def registration_problem(metadata: Any) -> tuple[str, str] | None:
    """(RFC 7591 error, description) if MemoryHub refuses this client metadata, else None: public
    clients only, the authorization-code grant only, every redirect URI acceptable
    (`redirect_uri_problem`)."""
    if not isinstance(metadata, dict):
        return None  # DOT answers malformed bodies itself
    if metadata.get("token_endpoint_auth_method") != "none":
        return (
            "invalid_client_metadata",
            'only public clients may register: send "token_endpoint_auth_method": "none" and use PKCE',
        )
    grant_types = metadata.get("grant_types", ["authorization_code"])
    if isinstance(grant_types, list) and not set(map(str, grant_types)) <= ALLOWED_GRANT_TYPES:
        return "invalid_client_metadata", "only the authorization_code (and refresh_token) grant types are supported"
    redirect_uris = metadata.get("redirect_uris")
    for uri in redirect_uris if isinstance(redirect_uris, list) else []:
        if isinstance(uri, str) and (problem := redirect_uri_problem(uri)):
            return "invalid_redirect_uri", f"{uri}: {problem}"
    return None


def _refusal(request: HttpRequest) -> HttpResponse | None:
    try:
        metadata = json.loads(request.body)
    except ValueError:
        return None  # DOT answers it
    refused = registration_problem(metadata)
    if refused is None:
        return None
    error, description = refused
    return JsonResponse({"error": error, "error_description": description}, status=400)


class RegistrationView(dcr_views.DynamicClientRegistrationView):
    """DOT's RFC 7591 endpoint, for public authorization-code clients with acceptable redirect
    URIs only; each registration audited `oauth.client_registered`."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refused = _refusal(request)
        if refused is not None:
            return refused
        # Registration is anonymous (RFC 7591 open registration): a browser that happens to carry a
        # session cookie must not tie the client, or its registration token, to that user.
        request.user = AnonymousUser()
        response: HttpResponse = super().post(request, *args, **kwargs)
        if response.status_code == 201:
            application = get_application_model().objects.get(client_id=json.loads(response.content)["client_id"])
            services.oauth_client_registered(application=application, source="registration")
        return response


class RegistrationManagementView(dcr_views.DynamicClientRegistrationManagementView):
    """DOT's RFC 7592 endpoint: an update must keep to the same rules as a registration."""

    def put(self, request: HttpRequest, client_id: str, *args: Any, **kwargs: Any) -> HttpResponse:
        auth = self._authenticate_registration_request(request, client_id)
        if isinstance(auth, HttpResponse):
            return auth
        refused = _refusal(request)
        if refused is not None:
            return refused
        response: HttpResponse = super().put(request, client_id, *args, **kwargs)
        return response


# --- Client ID Metadata Documents ------------------------------------------------------------------


@receiver(post_save, sender=get_application_model(), dispatch_uid="memoryhub-oauth-cimd-registered")
def _metadata_client_registered(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """A client first seen through its metadata document is audited like a registration (DOT
    creates its row while resolving the client_id; later re-fetches only update it)."""
    if created and instance.registration_source == instance.RegistrationSource.CIMD:
        services.oauth_client_registered(application=instance, source="metadata-document")


class MetadataFetcher(cimd.SafeMetadataFetcher):
    """DOT's SSRF-hardened fetcher (https only, public addresses only, no redirects, the size and
    time limits of the CIMD_* settings), refusing documents whose redirect URIs break our rule.

    Two settings, empty by default, open it for tests and private deployments only:
    `MEMORYHUB_OAUTH_CIMD_ALLOW_HOSTS` names hosts fetched even though they resolve to a private or
    loopback address, and `MEMORYHUB_OAUTH_CIMD_CA_FILE` is a CA bundle trusted for them (else the
    system's). Every other limit still holds for those hosts."""

    def fetch(self, client_id: str) -> tuple[dict[str, Any], int]:
        parsed = cimd._validate_client_id_url(client_id)
        allowed_private = {h.lower() for h in getattr(settings, "MEMORYHUB_OAUTH_CIMD_ALLOW_HOSTS", ())}
        if (parsed.hostname or "").lower() in allowed_private:
            metadata, max_age = self._fetch_private(parsed)
        else:
            metadata, max_age = super().fetch(client_id)
        for uri in metadata.get("redirect_uris") or []:
            if isinstance(uri, str) and (problem := redirect_uri_problem(uri)):
                raise cimd.CIMDError(f"redirect URI {uri!r} refused: {problem}")
        return metadata, max_age

    def _fetch_private(self, parsed: Any) -> tuple[dict[str, Any], int]:
        port = parsed.port or 443
        host = parsed.hostname
        try:
            ipaddress.ip_address(host)
            ip = host
        except ValueError:
            import socket

            ip = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)[0][4][0]
        timeout = oauth2_settings.CIMD_FETCH_TIMEOUT_SECONDS
        ca_file = getattr(settings, "MEMORYHUB_OAUTH_CIMD_CA_FILE", "") or None
        ssl_context = ssl.create_default_context(cafile=ca_file)
        deadline = time.monotonic() + timeout
        pool = urllib3.HTTPSConnectionPool(
            host=ip,
            port=port,
            timeout=urllib3.Timeout(connect=timeout, read=timeout, total=max(deadline - time.monotonic(), 0.1)),
            retries=False,
            maxsize=1,
            ssl_context=ssl_context,
            server_hostname=host,
        )
        path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        try:
            response = pool.urlopen(
                "GET",
                path,
                headers={"Host": parsed.netloc, "Accept": "application/json, application/*+json"},
                redirect=False,
                preload_content=False,
            )
            try:
                document: tuple[dict[str, Any], int] = self._read_document(response)
                return document
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as error:
            raise cimd.CIMDError(f"could not fetch client_id document: {error}") from error
        finally:
            pool.close()
