"""DRF adapters over `access.authentication` (the only place keys and OAuth tokens are checked)."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from access import authentication
from access.exceptions import NamespaceConflict, NotAuthenticated
from access.permissions import Access
from kernel.http_errors import authenticate_header, request_origin


class ApiKeyAuthentication(BaseAuthentication):
    """Sets `request.auth` to the key's `Access` and `request.user` to the key's owner."""

    def authenticate(self, request: Request) -> tuple[KeyOwner, Access]:
        raw = authentication.key_from_request(request.headers)
        # Missing keys are refused here too (not left to a permission class), so that a missing
        # and a wrong key take the same path and get the same answer.
        access = replace(
            authentication.authenticate(raw, origin=functools.partial(request_origin, request)), surface="rest"
        )
        return KeyOwner(access.user_id), access

    def authenticate_header(self, request: Request) -> str:
        return authenticate_header(request_origin(request))


class HasApiKey(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, Access):
            raise NotAuthenticated()
        return True


NAMESPACE_HEADER = "X-Memory-Namespace"


def requested_namespace(request: Request, body_namespace: str | None) -> str | None:
    """The namespace a REST request names: its body's `namespace` or the X-Memory-Namespace header
    (an empty one counts as absent); None when it names none, and then each route says what that
    means (the key's default namespace, or every readable one for search). Every REST view reads
    the header through here, so all of them treat it the same way.

    Raises NamespaceConflict when the body and the header name different namespaces."""
    header = (request.headers.get(NAMESPACE_HEADER) or "").strip() or None
    body = body_namespace or None
    if body is not None and header is not None and body != header:
        raise NamespaceConflict(body, header)
    return body or header


def namespace_header(namespace: str | None) -> dict[str, str]:
    """Response headers saying which namespace a call acted on (none when it covered several)."""
    return {NAMESPACE_HEADER: namespace} if namespace else {}


class KeyOwner:
    """What DRF's `request.user` holds for a key: the owner's id, without loading the user."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, user_id: int | None) -> None:
        self.pk = self.id = user_id
