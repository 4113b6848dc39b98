"""Writes to keys, grants and allowances. Every change is audited here, whoever makes it
(admin, self-service pages, management commands), so the log cannot be bypassed."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.utils import timezone
from oauth2_provider import models as oauth_models

from access import namespaces, patterns, selectors, signals
from access import secrets as keys
from access.exceptions import InvalidKeyRequest
from access.models import ApiKey, AuditEvent, NamespaceAllowance, NamespaceGrant, OAuthConsent
from access.permissions import Grant, Permission, grant_within
from kernel.errors import InvalidArgument

Actor = AbstractBaseUser | AnonymousUser | None
MAX_KEY_NAME = 100


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str  # shown to the caller once; never stored


def _audit(
    *,
    action: str,
    actor: Actor,
    source: str,
    key: ApiKey | None = None,
    subject: Any = None,
    **detail: Any,
) -> None:
    real_actor = actor if isinstance(actor, AbstractBaseUser) and actor.pk is not None else None
    AuditEvent.objects.create(
        action=action,
        actor_id=real_actor.pk if real_actor else None,
        actor_name=real_actor.get_username() if real_actor else "",
        source=source,
        key=key,
        key_prefix=key.prefix if key else "",
        subject=str(subject.get_username() if hasattr(subject, "get_username") else subject or ""),
        detail=detail,
    )


def _parse_grants(grants: Iterable[Grant | tuple[str, str | Permission]]) -> list[Grant]:
    parsed: dict[str, Grant] = {}
    for item in grants:
        if isinstance(item, Grant):
            grant = item
        else:
            pattern, permission = item
            grant = Grant(
                patterns.validate(pattern),
                permission if isinstance(permission, Permission) else Permission.parse(permission),
            )
        patterns.validate(grant.pattern)
        # The same pattern twice keeps the stronger permission.
        if grant.pattern not in parsed or grant.permission > parsed[grant.pattern].permission:
            parsed[grant.pattern] = grant
    return list(parsed.values())


def _clean_key_fields(name: str, expires_at: dt.datetime | None, default_namespace: str | None) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_KEY_NAME:
        raise InvalidKeyRequest(f"a key needs a name of 1 to {MAX_KEY_NAME} characters", field="name")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidKeyRequest("the expiry must be in the future", field="expires_at")
    if default_namespace:
        try:
            namespaces.validate(default_namespace)
        except InvalidArgument as error:
            raise InvalidKeyRequest(error.message, field="default_namespace") from None
    return name


@transaction.atomic
def api_key_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    grants: Iterable[Grant | tuple[str, str | Permission]] = (),
    expires_at: dt.datetime | None = None,
    default_namespace: str | None = None,
    actor: Actor = None,
    source: str,
) -> CreatedKey:
    """Create a key for `owner` with `grants`. No allowance check: for operators and commands
    (self-service goes through `api_key_create_for_self`)."""
    name = _clean_key_fields(name, expires_at, default_namespace)
    parsed = _parse_grants(grants)
    prefix, secret = keys.new_key()
    while ApiKey.objects.filter(prefix=prefix).exists():  # 2^32 prefixes: a clash is rare, not impossible
        prefix, secret = keys.new_key()
    key = ApiKey.objects.create(
        owner_id=owner.pk,
        name=name,
        prefix=prefix,
        secret_hash=keys.digest(secret),
        expires_at=expires_at,
        default_namespace=default_namespace or "",
    )
    NamespaceGrant.objects.bulk_create(
        NamespaceGrant(key=key, pattern=g.pattern, permission=g.permission.label) for g in parsed
    )
    _audit(
        action=AuditEvent.Action.KEY_CREATED,
        actor=actor,
        source=source,
        key=key,
        subject=owner,
        name=name,
        grants=[str(g) for g in parsed],
        expires_at=expires_at.isoformat() if expires_at else None,
        default_namespace=default_namespace or None,
    )
    return CreatedKey(key=key, secret=secret)


def require_within_allowances(user: AbstractBaseUser, grants: Iterable[Grant]) -> None:
    """Raise `InvalidKeyRequest` (field "grants", the offending pattern) unless every grant lies
    within what operators allow `user` (`selectors.allowed_grants`): the one rule for what a user
    may hand on, to a key of their own or to a connected OAuth app."""
    allowed = selectors.allowed_grants(user)
    for grant in grants:
        if not grant_within(grant, allowed):
            raise InvalidKeyRequest(
                f"you may not grant {grant.permission.label} on {grant.pattern!r}; "
                f"allowed: {', '.join(str(a) for a in allowed)}",
                field="grants",
                pattern=grant.pattern,
            )


def api_key_create_for_self(
    *,
    user: AbstractBaseUser,
    name: str,
    grants: Iterable[Grant | tuple[str, str | Permission]],
    expires_at: dt.datetime | None = None,
    default_namespace: str | None = None,
) -> CreatedKey:
    """A user creating their own key: every grant must lie within what the operator allows
    them (`selectors.allowed_grants`), and the default namespace must be one the key can read."""
    _clean_key_fields(name, expires_at, default_namespace)
    parsed = _parse_grants(grants)
    if not parsed:
        raise InvalidKeyRequest("choose at least one namespace for the key", field="grants")
    require_within_allowances(user, parsed)
    if default_namespace and not any(patterns.matches(g.pattern, default_namespace) for g in parsed):
        raise InvalidKeyRequest(
            f"the default namespace {default_namespace!r} is not covered by the key's grants",
            field="default_namespace",
        )
    return api_key_create(
        owner=user,
        name=name,
        grants=parsed,
        expires_at=expires_at,
        default_namespace=default_namespace,
        actor=user,
        source="self-service",
    )


def signin_throttled(*, username: str, address: str, limit: str, failures: int, seconds: int, page: str) -> None:
    """Record that password sign-in was shut for an account or a client address (signin.py)."""
    _audit(
        action=AuditEvent.Action.SIGNIN_THROTTLED,
        actor=None,
        source="sign-in",
        subject=username[:150],
        limit=limit,
        address=address,
        failures=failures,
        seconds=seconds,
        page=page,
    )


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: Actor = None, source: str) -> bool:
    """Revoke `key` from now on. Returns False (and records nothing) if it was already revoked."""
    updated = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db(fields=["revoked_at"])
    if updated:
        _audit(action=AuditEvent.Action.KEY_REVOKED, actor=actor, source=source, key=key, subject=key.owner)
        _key_changed(key)
    return bool(updated)


def _key_changed(key: ApiKey) -> None:
    """After the commit, whatever the key holds open (MCP streams and sessions, on every process)
    looks at it again; robust: the change stands even if that fails (streams re-check it at
    their keep-alives anyway)."""
    transaction.on_commit(functools.partial(signals.key_changed.send, sender=ApiKey, key_id=key.pk), robust=True)


@transaction.atomic
def api_key_update(
    *,
    key: ApiKey,
    name: str,
    expires_at: dt.datetime | None,
    default_namespace: str | None,
    actor: Actor = None,
    source: str,
) -> ApiKey:
    """Change a key's name, expiry or default namespace (operators; the secret never changes).
    An expiry in the past is allowed here: it ends the key now, like a revocation."""
    before = {"name": key.name, "expires_at": key.expires_at, "default_namespace": key.default_namespace}
    key.name = _clean_key_fields(name, None, default_namespace)
    key.expires_at = expires_at
    key.default_namespace = default_namespace or ""
    key.save(update_fields=["name", "expires_at", "default_namespace"])
    changed = {field: str(getattr(key, field)) for field, old in before.items() if getattr(key, field) != old}
    if "expires_at" in changed:
        _key_changed(key)
    if changed:
        _audit(action=AuditEvent.Action.KEY_CHANGED, actor=actor, source=source, key=key, subject=key.owner, **changed)
    return key


def _set_rule(
    model: type[NamespaceGrant] | type[NamespaceAllowance],
    owner: dict[str, Any],
    grant: Grant,
    *,
    added: str,
    changed: str,
    audit: Callable[..., None],
) -> None:
    """Add the (pattern, permission) row of a key or user, or change its permission; audited."""
    row, created = model.objects.get_or_create(
        **owner, pattern=grant.pattern, defaults={"permission": grant.permission.label}
    )
    if created:
        audit(action=added, pattern=grant.pattern, permission=grant.permission.label)
    elif row.permission != grant.permission.label:
        previous = row.permission
        row.permission = grant.permission.label
        row.save(update_fields=["permission"])
        audit(action=changed, pattern=grant.pattern, permission=grant.permission.label, previous=previous)


def _remove_rule(
    model: type[NamespaceGrant] | type[NamespaceAllowance],
    owner: dict[str, Any],
    pattern: str,
    *,
    removed: str,
    audit: Callable[..., None],
) -> bool:
    deleted, _ = model.objects.filter(**owner, pattern=pattern).delete()
    if deleted:
        audit(action=removed, pattern=pattern)
    return bool(deleted)


@transaction.atomic
def grant_set(*, key: ApiKey, pattern: str, permission: str | Permission, actor: Actor = None, source: str) -> None:
    """Give `key` `permission` on `pattern`, adding the grant or changing its permission."""
    (grant,) = _parse_grants([(pattern, permission)])
    audit = functools.partial(_audit, actor=actor, source=source, key=key, subject=key.owner)
    _set_rule(
        NamespaceGrant,
        {"key": key},
        grant,
        added=AuditEvent.Action.GRANT_ADDED,
        changed=AuditEvent.Action.GRANT_CHANGED,
        audit=audit,
    )


@transaction.atomic
def grant_remove(*, key: ApiKey, pattern: str, actor: Actor = None, source: str) -> bool:
    audit = functools.partial(_audit, actor=actor, source=source, key=key, subject=key.owner)
    return _remove_rule(NamespaceGrant, {"key": key}, pattern, removed=AuditEvent.Action.GRANT_REMOVED, audit=audit)


@transaction.atomic
def allowance_set(
    *, user: AbstractBaseUser, pattern: str, permission: str | Permission, actor: Actor = None, source: str
) -> None:
    """Let `user` grant up to `permission` on `pattern` to keys they create themselves."""
    (grant,) = _parse_grants([(pattern, permission)])
    audit = functools.partial(_audit, actor=actor, source=source, subject=user)
    _set_rule(
        NamespaceAllowance,
        {"user_id": user.pk},
        grant,
        added=AuditEvent.Action.ALLOWANCE_ADDED,
        changed=AuditEvent.Action.ALLOWANCE_CHANGED,
        audit=audit,
    )


@transaction.atomic
def allowance_remove(*, user: AbstractBaseUser, pattern: str, actor: Actor = None, source: str) -> bool:
    audit = functools.partial(_audit, actor=actor, source=source, subject=user)
    return _remove_rule(
        NamespaceAllowance, {"user_id": user.pk}, pattern, removed=AuditEvent.Action.ALLOWANCE_REMOVED, audit=audit
    )


# --- OAuth: connected apps (access/oauth_server.py is the authorization server's rules) -----------


def oauth_client_registered(*, application: Any, source: str, **detail: Any) -> None:
    """Record that a client registered itself (DCR) or was resolved from its metadata document."""
    _audit(
        action=AuditEvent.Action.OAUTH_CLIENT_REGISTERED,
        actor=None,
        source=source,
        client_id=application.client_id,
        client_name=application.name,
        redirect_uris=application.redirect_uris.split(),
        **detail,
    )


@transaction.atomic
def oauth_consent_save(
    *, user: AbstractBaseUser, application: Any, grants: Iterable[Grant | tuple[str, str | Permission]]
) -> OAuthConsent:
    """`user` lets `application` reach `grants` (the consent page's Allow): at least one, each within
    what operators allow the user (`require_within_allowances`, raising `InvalidKeyRequest`).
    Creates the (user, application) consent or replaces its grants; audited `oauth.authorized`."""
    parsed = _parse_grants(grants)
    if not parsed:
        raise InvalidKeyRequest("choose at least one namespace the app may reach", field="grants")
    require_within_allowances(user, parsed)
    rows = [[g.pattern, g.permission.label] for g in sorted(parsed, key=lambda g: g.pattern)]
    consent, _ = OAuthConsent.objects.update_or_create(
        user_id=user.pk, application_id=application.pk, defaults={"grants": rows, "updated_at": timezone.now()}
    )
    _audit(
        action=AuditEvent.Action.OAUTH_AUTHORIZED,
        actor=user,
        source="consent",
        subject=user,
        client_id=application.client_id,
        client_name=application.name,
        grants=[str(g) for g in parsed],
    )
    return consent


def _delete(queryset: Any) -> int:
    """Delete the rows of `queryset`; how many of its own model went (not counting cascades)."""
    _, per_model = queryset.delete()
    return int(per_model.get(queryset.model._meta.label, 0))


@transaction.atomic
def oauth_revoke(*, user: AbstractBaseUser, application: Any, actor: Actor = None, source: str) -> bool:
    """Disconnect `application` from `user`: delete their consent and every access token, refresh
    token and authorization code the app holds for the user, so nothing it holds works any more.
    Used by the "Connected apps" page and the admin. Returns False (recording nothing) if there
    was nothing to revoke."""
    mine = {"user_id": user.pk, "application_id": application.pk}
    consents = _delete(OAuthConsent.objects.filter(**mine))
    # Refresh tokens first: deleting an access token would only unlink its refresh token.
    refresh = _delete(oauth_models.get_refresh_token_model().objects.filter(**mine))
    access = _delete(oauth_models.get_access_token_model().objects.filter(**mine))
    codes = _delete(oauth_models.get_grant_model().objects.filter(**mine))
    if not (consents or refresh or access or codes):
        return False
    _audit(
        action=AuditEvent.Action.OAUTH_REVOKED,
        actor=actor,
        source=source,
        subject=user,
        client_id=application.client_id,
        client_name=application.name,
        access_tokens=access,
        refresh_tokens=refresh,
    )
    user_id, application_id = user.pk, application.pk
    transaction.on_commit(
        lambda: signals.oauth_app_revoked.send(sender=OAuthConsent, user_id=user_id, application_id=application_id)
    )
    return True
