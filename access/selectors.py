"""Reads of keys, allowances and the namespaces a caller can reach."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from access import patterns
from access.exceptions import NotAuthenticated
from access.models import ApiKey, KeyUsageDay, Namespace, NamespaceAllowance
from access.permissions import Access, Grant, Permission


def own_pattern(user: AbstractBaseUser) -> str:
    """Every user may keep memories under `user:<username>:*` without asking an operator."""
    return f"user:{user.get_username()}:*"


def own_namespace_allowed(user: AbstractBaseUser) -> bool:
    try:
        patterns.validate(own_pattern(user))
    except Exception:
        return False  # a username with characters a namespace cannot hold (e.g. spaces)
    return True


def allowed_grants(user: AbstractBaseUser) -> list[Grant]:
    """What `user` may grant to their own keys: their own space, what operators allowed, and
    everything for superusers."""
    if getattr(user, "is_superuser", False):
        return [Grant(patterns.WILDCARD, Permission.WRITE)]
    grants = [Grant(own_pattern(user), Permission.WRITE)] if own_namespace_allowed(user) else []
    grants += [
        Grant(row.pattern, Permission.parse(row.permission))
        for row in NamespaceAllowance.objects.filter(user_id=user.pk).order_by("pattern")
    ]
    return grants


def user_access(user: AbstractBaseUser) -> Access:
    """A signed-in user's reach in the browser: what they could give a key of their own."""
    return Access(grants=tuple(allowed_grants(user)), user_id=user.pk, surface="console")


def operator_access(user: AbstractBaseUser | AnonymousUser) -> Access:
    """A staff member's reach in the admin: every namespace (Django's model permissions, checked
    by the admin before an action runs, decide what they may change)."""
    if not (user.is_authenticated and getattr(user, "is_staff", False)):
        raise NotAuthenticated()
    return Access(grants=(Grant(patterns.WILDCARD, Permission.WRITE),), user_id=user.pk, surface="admin")


def keys_for_user(user: AbstractBaseUser) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(owner_id=user.pk).prefetch_related("grants").order_by("-created_at")


def _pattern_filter(pattern: str) -> Q:
    if pattern.endswith(":*"):
        fixed = pattern[:-1]  # "org:team:"; ';' sorts right after ':', so this is a range scan of the index
        return Q(name__gt=fixed, name__lt=fixed[:-1] + ";")
    return Q(name=pattern)


def reachable_namespaces(
    access: Access, *, contains: str = "", permission: Permission = Permission.READ
) -> QuerySet[Namespace]:
    """Existing namespaces on which `access` holds `permission` (read: every one it can reach), by
    name; one indexed range per grant pattern."""
    readable = [g.pattern for g in access.grants if g.permission >= permission]
    if not readable:
        return Namespace.objects.none()
    if patterns.WILDCARD in readable:
        queryset = Namespace.objects.order_by("name")
    else:
        condition = Q(pk__in=[])
        for pattern in readable:
            condition |= _pattern_filter(pattern)
        queryset = Namespace.objects.filter(condition).order_by("name")
    return queryset.filter(name__contains=contains) if contains else queryset


def usable_namespaces(access: Access) -> list[str]:
    """The namespaces a key can use: readable ones that exist, plus its exact grants and its
    default namespace (usable before anything has been written there)."""
    names = set(reachable_namespaces(access).values_list("name", flat=True))
    names.update(g.pattern for g in access.grants if "*" not in g.pattern)
    if access.default_namespace and access.can(access.default_namespace, Permission.READ):
        names.add(access.default_namespace)
    return sorted(names)


def key_state(key_id: int) -> tuple[bool, dt.datetime | None]:
    """Whether the key still works (exists, not revoked, not expired, owner active) and when it
    expires; what an open stream checks to know it may stay open."""
    row = ApiKey.objects.filter(pk=key_id).values_list("revoked_at", "expires_at", "owner__is_active").first()
    if row is None:
        return False, None
    revoked_at, expires_at, owner_active = row
    usable = revoked_at is None and owner_active and (expires_at is None or expires_at > timezone.now())
    return bool(usable), expires_at


USAGE_DAYS = 30
USAGE_TOP_KEYS = 20


def key_usage(user: AbstractBaseUser, *, days: int = USAGE_DAYS, top: int = USAGE_TOP_KEYS) -> list[dict[str, Any]]:
    """Calls per day over the last `days` days (UTC, oldest first, zeros included) and when last
    used, for the user's own keys; a superuser sees every key. At most `top` keys, most calls
    first (then most recently used; for a superuser only keys with calls in the span). Counts reach the table in batches (access/authentication.py
    `flush_usage`): the last minute of a running process may not be in them yet."""
    today = timezone.now().date()
    first = today - dt.timedelta(days=days - 1)
    keys = ApiKey.objects.select_related("owner")
    if not getattr(user, "is_superuser", False):
        keys = keys.filter(owner_id=user.pk)
    totals = dict(
        KeyUsageDay.objects.filter(day__gte=first, key__in=keys.values("pk"))
        .values("key_id")
        .annotate(total=Sum("calls"))
        .values_list("key_id", "total")
    )
    # Every key of a user (few) is listed, used or not; of all keys (an operator), the busiest.
    chosen = sorted(totals, key=lambda key_id: -totals[key_id])[:top] if getattr(user, "is_superuser", False) else None
    listed = list(keys.filter(pk__in=chosen)) if chosen is not None else list(keys.order_by("-created_at")[:top])
    per_day: dict[int, dict[dt.date, int]] = {}
    for key_id, day, calls in KeyUsageDay.objects.filter(day__gte=first, key__in=[k.pk for k in listed]).values_list(
        "key_id", "day", "calls"
    ):
        per_day.setdefault(key_id, {})[day] = calls
    span = [first + dt.timedelta(days=n) for n in range(days)]
    found = [
        {
            "id": key.pk,
            "name": key.name,
            "prefix": key.prefix,
            "owner": key.owner.get_username(),
            "state": key.state,
            "lastUsedAt": key.last_used_at,
            "total": totals.get(key.pk, 0),
            "days": [{"day": day, "calls": per_day.get(key.pk, {}).get(day, 0)} for day in span],
        }
        for key in listed
    ]
    never = dt.datetime.min.replace(tzinfo=dt.UTC)
    found.sort(key=lambda row: (-row["total"], -(row["lastUsedAt"] or never).timestamp()))
    return found


def usernames(user_ids: Iterable[int | None]) -> dict[int, str]:
    """{id: username} of these users, for pages that show who did something (a history records
    user ids); a deleted user is left out."""
    wanted = {user_id for user_id in user_ids if user_id is not None}
    if not wanted:
        return {}
    model = get_user_model()
    return dict(model.objects.filter(pk__in=wanted).values_list("pk", model.USERNAME_FIELD))
