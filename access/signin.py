"""Sign-in throttling for the password forms (`/accounts/login/` and `/admin/login/`).

Failed sign-ins are counted in the cache (shared by every process on Redis) per account and per
client address. Each count lives for a window that starts with its first failure; at the limit,
sign-in is refused for the rest of that window, before the password is even checked, so the right
password does not get through either. A success clears its account's count, not its address's
(one valid account must not reset a guesser's budget for the others). The account is the username
as typed, whether it exists or not, so the answer never tells which usernames exist.

The client address is the request's peer address (REMOTE_ADDR). Daphne puts the client's address
there from X-Forwarded-For only when started with --proxy-headers, which the deployment does for
server processes bound to loopback behind nginx; otherwise a forged header is ignored.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from access import services


def client_address(request: HttpRequest | None) -> str:
    return (request.META.get("REMOTE_ADDR") or "unknown") if request is not None else "unknown"


def _counter(kind: str, value: str) -> str:
    # Hashed: usernames may hold characters a cache key must not (memcached), and any length.
    digest = hashlib.sha256(value.encode()).hexdigest()[:32]
    return f"signin-failures:{kind}:{digest}"


def _limits() -> dict[str, int]:
    config = settings.MEMORYHUB_SIGNIN_THROTTLE
    return {"account": config["FAILURES_PER_ACCOUNT"], "address": config["FAILURES_PER_ADDRESS"]}


def _keys(username: str, address: str) -> dict[str, str]:
    return {"account": _counter("account", username.casefold()), "address": _counter("address", address)}


def refused_for(username: str, address: str) -> float:
    """Seconds until this account and address may try again; 0.0 when they may now."""
    limits, keys = _limits(), _keys(username, address)
    wait = 0.0
    for kind, key in keys.items():
        entry = cache.get(key)
        if entry and entry["failures"] >= limits[kind]:
            wait = max(wait, entry["until"] - time.time())
    return max(wait, 0.0)


def record_failure(username: str, address: str, *, page: str) -> None:
    """Count a failed sign-in; the one that reaches a limit is written to the audit log."""
    window = settings.MEMORYHUB_SIGNIN_THROTTLE["WINDOW_SECONDS"]
    limits = _limits()
    for kind, key in _keys(username, address).items():
        # Read-modify-write: two simultaneous failures may count once, which only delays the
        # lock by one attempt; exactness would need the Redis-only atomic path of ratelimit.py.
        now = time.time()
        entry = cache.get(key) or {"failures": 0, "until": now + window}
        entry["failures"] += 1
        cache.set(key, entry, timeout=max(1, math.ceil(entry["until"] - now)))
        if entry["failures"] == limits[kind]:
            services.signin_throttled(
                username=username,
                address=address,
                limit=kind,
                failures=entry["failures"],
                seconds=math.ceil(entry["until"] - now),
                page=page,
            )


def record_success(username: str) -> None:
    cache.delete(_counter("account", username.casefold()))


class ThrottledSignIn(forms.Form):
    """Mixin for Django's authentication forms: refuses a throttled account or address with a
    clear message before checking the password, and counts failures."""

    request: HttpRequest | None
    throttled_for: float = 0.0

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        address = client_address(self.request)
        page = self.request.path if self.request is not None else ""
        wait = refused_for(username, address)
        if wait > 0:
            self.throttled_for = wait
            minutes = max(1, math.ceil(wait / 60))
            raise forms.ValidationError(
                f"Too many failed sign-ins for this account or from your address. "
                f"Try again in {minutes} minute{'s' if minutes != 1 else ''}; "
                "an operator can reset a forgotten password with `manage.py changepassword`.",
                code="throttled",
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError as error:
            if error.code == "invalid_login":
                record_failure(username, address, page=page)
            raise
        record_success(username)
        return cleaned or {}


class ThrottledAuthenticationForm(ThrottledSignIn, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledSignIn, AdminAuthenticationForm):
    pass


def with_throttle_status(response: HttpResponse) -> HttpResponse:
    """429 with Retry-After when the sign-in form on `response` was refused by the throttle (the
    forms themselves would answer 200, like any other invalid form)."""
    context = response.context_data if isinstance(response, TemplateResponse) else None
    form = (context or {}).get("form")
    wait = getattr(form, "throttled_for", 0.0)
    if wait > 0:
        response.status_code = 429
        response["Retry-After"] = str(math.ceil(wait))
    return response


class SignInView(auth_views.LoginView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return with_throttle_status(super().post(request, *args, **kwargs))
