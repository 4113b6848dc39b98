"""DRF adapters over `memoryhub.access.authentication` (the only place keys are checked)."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from memoryhub.access import authentication
from memoryhub.access.exceptions import NotAuthenticated
from memoryhub.access.permissions import Access
from memoryhub.http_errors import AUTHENTICATE_HEADER


class ApiKeyAuthentication(BaseAuthentication):
    """Sets `request.auth` to the key's `Access` and `request.user` to the key's owner."""

    def authenticate(self, request: Request) -> tuple[KeyOwner, Access]:
        raw = authentication.key_from_request(request.headers)
        # Missing keys are refused here too (not left to a permission class), so that a missing
        # and a wrong key take the same path and get the same answer.
        access = authentication.authenticate(raw)
        return KeyOwner(access.user_id), access

    def authenticate_header(self, request: Request) -> str:
        return AUTHENTICATE_HEADER


class HasApiKey(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, Access):
            raise NotAuthenticated()
        return True


class KeyOwner:
    """What DRF's `request.user` holds for a key: the owner's id, without loading the user."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, user_id: int | None) -> None:
        self.pk = self.id = user_id
