"""Forms of the self-service pages.

They only parse what the browser sends. What a user may grant is decided by
`services.api_key_create_for_self`; its errors are put back on the matching field with
`KeyCreateForm.add_domain_error`, so the rule lives in one place.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from access import patterns, selectors
from access.exceptions import InvalidGrant
from access.permissions import Grant, Permission
from access.services import MAX_KEY_NAME
from access.signin import ThrottledAuthenticationForm
from kernel.errors import DomainError

NEVER, ON_DATE = "never", "date"
EXPIRY_CHOICES = [
    ("30", "in 30 days"),
    ("90", "in 90 days"),
    ("365", "in 365 days"),
    (ON_DATE, "on a date…"),
    (NEVER, "never"),
]
DEFAULT_EXPIRY = "90"
NO_ACCESS = ""


def grant_options(user: AbstractBaseUser) -> list[Grant]:
    """The rows of the create form: what the operator allows `user` (`selectors.allowed_grants`),
    led by the user's own space `user:<username>:*` whenever an allowance covers it (a superuser's
    `*` does), so the usual key takes one click."""
    options = selectors.allowed_grants(user)
    if selectors.own_namespace_allowed(user):
        own = selectors.own_pattern(user)
        covering = [g.permission for g in options if patterns.covers(g.pattern, own)]
        if covering and all(g.pattern != own for g in options):
            options.insert(0, Grant(own, max(covering)))
    return options


def suggested_default_namespace(user: AbstractBaseUser) -> str:
    """`user:<username>:default` when the user may grant it, else nothing."""
    if not selectors.own_namespace_allowed(user):
        return ""
    namespace = f"user:{user.get_username()}:default"
    allowed = selectors.allowed_grants(user)
    return namespace if any(patterns.matches(g.pattern, namespace) for g in allowed) else ""


class SignInForm(ThrottledAuthenticationForm):
    """Django's sign-in form, with labels that read as plain names (no trailing colon)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


@dataclass(frozen=True)
class GrantRow:
    """One allowance on the form: the pattern field (may be narrowed) and the access chosen."""

    allowed: Grant
    pattern: forms.BoundField
    permission: forms.BoundField


class GrantRowsMixin:
    """One row of fields per namespace pattern the operator allows the user (`grant_options`):
    the pattern, which may be narrowed inside the allowance, and "no access" / "read" / "read and
    write" (write only where the allowance permits it). Shared by the key form and the OAuth
    consent form (web/oauth.py); the service that receives the grants decides which are allowed."""

    fields: dict[str, forms.Field]
    options: list[Grant]
    grant_errors: list[str]

    def add_grant_fields(self, user: AbstractBaseUser, initial: Any) -> None:
        """`initial(option) -> (pattern, permission label or NO_ACCESS)` for each row."""
        self.options = grant_options(user)
        for index, option in enumerate(self.options):
            choices = [(NO_ACCESS, "no access"), (Permission.READ.label, "read")]
            if option.permission >= Permission.WRITE:
                choices.append((Permission.WRITE.label, "read and write"))
            pattern, permission = initial(option)
            self.fields[self._pattern_name(index)] = forms.CharField(
                label=f"Namespace pattern within {option.pattern}",
                max_length=patterns.MAX_PATTERN_LENGTH,
                required=False,
                initial=pattern,
            )
            self.fields[self._permission_name(index)] = forms.ChoiceField(
                label=f"Access to {option.pattern}",
                choices=choices,
                required=False,
                initial=permission,
                error_messages={"invalid_choice": "You may not grant “%(value)s” here."},
            )
        # Errors about the set of grants as a whole (none chosen, not allowed), shown by the rows.
        self.grant_errors = []

    @staticmethod
    def _pattern_name(index: int) -> str:
        return f"grant_{index}_pattern"

    @staticmethod
    def _permission_name(index: int) -> str:
        return f"grant_{index}_permission"

    def grant_rows(self) -> list[GrantRow]:
        return [
            GrantRow(option, self[self._pattern_name(i)], self[self._permission_name(i)])  # type: ignore[index]
            for i, option in enumerate(self.options)
        ]

    def clean_grants(self, cleaned: dict[str, Any]) -> list[tuple[str, str]]:
        """The (pattern, permission) chosen, each pattern checked; a malformed one is a row error."""
        grants: list[tuple[str, str]] = []
        for index in range(len(self.options)):
            pattern_field, permission_field = self._pattern_name(index), self._permission_name(index)
            pattern = (cleaned.get(pattern_field) or "").strip()
            permission = cleaned.get(permission_field) or NO_ACCESS
            if permission == NO_ACCESS:
                continue
            try:
                patterns.validate(pattern)
            except InvalidGrant as error:
                self.add_error(pattern_field, error.message)  # type: ignore[attr-defined]
                continue
            grants.append((pattern, permission))
        return grants

    def add_grant_error(self, error: DomainError) -> None:
        """A service's error about the grants, on the row of the pattern it names, else above the rows."""
        pattern = error.details.get("pattern")
        cleaned: dict[str, Any] = self.cleaned_data  # type: ignore[attr-defined]
        for index in range(len(self.options)):
            name = self._pattern_name(index)
            if pattern and (cleaned.get(name) or "").strip() == pattern:
                self.add_error(name, error.message)  # type: ignore[attr-defined]
                return
        self.grant_errors.append(error.message)


class KeyCreateForm(GrantRowsMixin, forms.Form):
    # One random token per rendered form: a form posted twice (a reload, Back and submit, a
    # double click) carries the same one, and the view creates a key once per token.
    submission = forms.CharField(
        widget=forms.HiddenInput,
        required=False,
        max_length=64,
        initial=lambda: secrets.token_urlsafe(16),
    )
    name = forms.CharField(
        max_length=MAX_KEY_NAME,
        help_text="So you can tell your keys apart, e.g. “laptop with Claude Desktop”.",
    )
    expires = forms.ChoiceField(label="Expires", choices=EXPIRY_CHOICES, initial=DEFAULT_EXPIRY)
    expires_on = forms.DateField(
        label="Expiry date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Only used with “on a date…”: the key stops working at 00:00 UTC that day.",
    )
    default_namespace = forms.CharField(
        max_length=255,
        required=False,
        help_text="Used when a request names no namespace. One of the namespaces above must cover it.",
    )

    def __init__(self, *args: Any, user: AbstractBaseUser, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.user = user
        own = selectors.own_pattern(user)
        self.add_grant_fields(
            user, lambda option: (option.pattern, option.permission.label if option.pattern == own else NO_ACCESS)
        )
        self.fields["default_namespace"].initial = suggested_default_namespace(user)
        self.fields["expires_on"].widget.attrs["min"] = (timezone.localdate() + dt.timedelta(days=1)).isoformat()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("submission") and "submission" not in self.errors:
            self.add_error(None, "This form is out of date: reload the page and fill it in again.")
        cleaned["expires_at"] = self._expires_at(cleaned)
        cleaned["grants"] = self.clean_grants(cleaned)
        return cleaned

    def _expires_at(self, cleaned: dict[str, Any]) -> dt.datetime | None:
        choice = cleaned.get("expires")
        if choice == ON_DATE:
            day: dt.date | None = cleaned.get("expires_on")
            if day is None:
                if "expires_on" not in self.errors:
                    self.add_error("expires_on", "Choose the day the key stops working.")
                return None
            return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
        if choice and choice != NEVER:
            return timezone.now() + dt.timedelta(days=int(choice))
        return None

    def key_arguments(self) -> dict[str, Any]:
        """Keyword arguments for `services.api_key_create_for_self` (after `is_valid()`)."""
        return {
            "name": self.cleaned_data["name"],
            "grants": self.cleaned_data["grants"],
            "expires_at": self.cleaned_data["expires_at"],
            "default_namespace": self.cleaned_data.get("default_namespace") or None,
        }

    def add_domain_error(self, error: DomainError) -> None:
        """Show an error of the key service next to the field it is about."""
        field = error.details.get("field")
        if field == "grants":
            self.add_grant_error(error)
        elif field == "expires_at":
            self.add_error("expires_on" if self.cleaned_data.get("expires") == ON_DATE else "expires", error.message)
        elif field in ("name", "default_namespace"):
            self.add_error(field, error.message)
        else:
            self.add_error(None, error.message)
