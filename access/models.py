"""API keys, their namespace grants, what operators allow each user, and the audit log.

Only the SHA-256 of a key's secret is stored; the secret is shown once when the key is created.
All writes go through `access/services.py`, which also writes the audit log.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from access.permissions import Access, Grant, Permission


class PermissionChoice(models.TextChoices):
    READ = "read", "read"
    WRITE = "write", "read and write"


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self) -> ApiKeyQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiKey(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    # Public and unique: shown in lists and used to find the row; the secret part is not stored.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    default_namespace = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        db_table = "access_apikey"
        verbose_name = "API key"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="apikey_owner_recent")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    def to_access(self) -> Access:
        return Access(
            grants=tuple(Grant(g.pattern, Permission.parse(g.permission)) for g in self.grants.all()),
            user_id=self.owner_id,
            key_id=self.pk,
            key_prefix=self.prefix,
            default_namespace=self.default_namespace or None,
        )


class Namespace(models.Model):
    """A namespace: a colon path such as `org:team:project`. Every graph row belongs to one."""

    name = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Whether a write that says the same as a current memory is folded into it (memory/dedupe.py).
    dedupe = models.BooleanField(
        default=True,
        help_text="Fold a memory or observation that repeats a current one into it instead of storing it twice.",
    )

    class Meta:
        # Defined in the access layer, which owns namespaces, but still the graph app's model:
        # its migrations (graph/migrations/0001) and table stay where they were.
        app_label = "graph"
        db_table = "graph_namespace"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class NamespaceRule(models.Model):
    """A namespace pattern with a permission (write implies read)."""

    pattern = models.CharField(max_length=255, help_text="org:team:project, org:team:* or *")
    permission = models.CharField(max_length=5, choices=PermissionChoice.choices, default=PermissionChoice.READ)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.pattern}={self.permission}"


class NamespaceGrant(NamespaceRule):
    """What one API key may do."""

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="grants")

    class Meta:
        db_table = "access_namespacegrant"
        constraints = [models.UniqueConstraint(fields=["key", "pattern"], name="grant_unique_pattern")]


class NamespaceAllowance(NamespaceRule):
    """Namespaces an operator lets a user grant to their own keys (besides `user:<username>:*`)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="namespace_allowances")

    class Meta:
        db_table = "access_namespaceallowance"
        constraints = [models.UniqueConstraint(fields=["user", "pattern"], name="allowance_unique_pattern")]


class AuditEvent(models.Model):
    """Append-only record of who created, revoked or changed which key or grant, and when; and of
    password sign-in shut for an account or an address after too many failures; and of OAuth clients
    registered, authorized (consent given) and revoked."""

    class Action(models.TextChoices):
        KEY_CREATED = "key.created"
        KEY_REVOKED = "key.revoked"
        KEY_CHANGED = "key.changed"
        GRANT_ADDED = "grant.added"
        GRANT_CHANGED = "grant.changed"
        GRANT_REMOVED = "grant.removed"
        ALLOWANCE_ADDED = "allowance.added"
        ALLOWANCE_CHANGED = "allowance.changed"
        ALLOWANCE_REMOVED = "allowance.removed"
        SIGNIN_THROTTLED = "signin.throttled"
        OAUTH_CLIENT_REGISTERED = "oauth.client_registered"
        OAUTH_AUTHORIZED = "oauth.authorized"
        OAUTH_REVOKED = "oauth.revoked"

    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Snapshots, so the record still reads right after the user or key is deleted.
    actor_name = models.CharField(max_length=150, blank=True)
    source = models.CharField(
        max_length=20,
        help_text="admin, self-service, command, api, sign-in, consent, registration, metadata-document",
    )
    action = models.CharField(max_length=32, choices=Action.choices)
    key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events")
    key_prefix = models.CharField(max_length=16, blank=True)
    subject = models.CharField(max_length=150, blank=True, help_text="the user the key or allowance belongs to")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "access_auditevent"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.key_prefix}"


class KeyUsageDay(models.Model):
    """How many authenticated calls one key made on one day (UTC), for the console's usage chart.

    Counted in memory by each process and added here in batches (access/authentication.py
    `flush_usage`), never with a write per request."""

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="usage_days")
    day = models.DateField()
    calls = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "access_keyusageday"
        verbose_name = "key usage per day"
        constraints = [models.UniqueConstraint(fields=["key", "day"], name="keyusage_unique_day")]
        # The unique index (key_id, day) serves both the upsert and a key's last 30 days; the day
        # index the "top keys" of all keys for an operator.
        indexes = [models.Index(fields=["day"], name="keyusage_day")]

    def __str__(self) -> str:
        return f"{self.key_id} {self.day}: {self.calls}"


class OAuthConsent(models.Model):
    """What a user let one OAuth client (a connected app) reach: the namespace grants chosen on the
    consent page, within what operators allow the user (access/oauth.py). Every access token the
    client holds for the user reaches exactly these, checked by the runner like a key's grants;
    consenting again replaces them, and revoking the app deletes this and the app's tokens."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oauth_consents")
    application = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE, related_name="memoryhub_consents"
    )
    # [[pattern, "read" | "write"], ...], as NamespaceGrant rows would hold them.
    grants = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "access_oauthconsent"
        verbose_name = "OAuth consent (connected app)"
        constraints = [models.UniqueConstraint(fields=["user", "application"], name="oauthconsent_unique_app")]

    def __str__(self) -> str:
        return f"{self.user_id} → {self.application_id}: {self.grants}"

    def to_grants(self) -> tuple[Grant, ...]:
        return tuple(Grant(pattern, Permission.parse(permission)) for pattern, permission in self.grants)
