"""The OAuth pages people see: the consent page at /oauth/authorize/ and "Connected apps" (/apps/).

The consent page is django-oauth-toolkit's AuthorizationView with our form: the user sees the
client's name and where it will send them (the redirect host), and picks which namespaces it may
read or write, within what operators allow them. "Allow" saves the consent
(`services.oauth_consent_save`, audited) and issues the code in one transaction, so a refused code
(e.g. `invalid_target`) leaves no consent behind; "Deny" sends the client `access_denied`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.forms import AllowForm
from oauth2_provider.models import get_access_token_model, get_application_model
from oauth2_provider.views import AuthorizationView
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error

from access import patterns, services
from access.forms import NO_ACCESS, GrantRowsMixin
from access.models import OAuthConsent
from access.oauth_server import foreign_resources, request_origin
from access.permissions import Grant
from kernel.errors import DomainError
from kernel.security import CSP_HEADER


def redirect_host(uri: str) -> str:
    """host[:port] a redirect URI sends the browser to (what the user must see)."""
    try:
        return urlsplit(uri).netloc or uri
    except ValueError:
        return uri


def _origin(uri: str) -> str:
    """scheme://host[:port] of an http(s) URI, for a CSP source; "" for anything else."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in parts.netloc for c in " ;,'\"@"):
        return ""
    return f"{parts.scheme}://{parts.netloc}"


class ConsentForm(GrantRowsMixin, AllowForm):
    """DOT's hidden OAuth fields plus one row per namespace pattern the operator allows the user:
    the pattern (may be narrowed inside the allowance) and "no access" / "read" / "read and write"
    (write only where the allowance permits it). Which grants are allowed is decided by
    `services.oauth_consent_save`; this form only parses them."""

    def __init__(self, *args: Any, user: AbstractBaseUser, previous: tuple[Grant, ...] = (), **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

        def initial(option: Grant) -> tuple[str, str]:
            # A consent given before is shown again, so re-authorizing keeps it unless changed.
            earlier = next((g for g in previous if patterns.covers(option.pattern, g.pattern)), None)
            if earlier is None:
                return option.pattern, NO_ACCESS
            return earlier.pattern, earlier.permission.label if earlier.permission <= option.permission else NO_ACCESS

        self.add_grant_fields(user, initial)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        cleaned["grants"] = self.clean_grants(cleaned) if cleaned.get("allow") else []
        return cleaned

    def add_domain_error(self, error: DomainError) -> None:
        """Show an error of the consent service on the row it is about, else above the rows."""
        self.add_grant_error(error)


class ConsentView(AuthorizationView):
    """/oauth/authorize/: sign-in required (then back here), refuses a `resource` that is not this
    server's with `invalid_target` before asking anything, then asks for consent."""

    form_class = ConsentForm
    template_name = "oauth2_provider/authorize.html"

    def _application(self, client_id: str | None) -> Any:
        return get_application_model().objects.filter(client_id=client_id or "").first()

    def get_form_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = super().get_form_kwargs()
        kwargs["user"] = self.request.user
        client_id = self.request.POST.get("client_id") if self.request.method == "POST" else None
        application = self.oauth2_data.get("application") or self._application(client_id)
        consent = OAuthConsent.objects.filter(user_id=self.request.user.pk, application=application).first()
        kwargs["previous"] = consent.to_grants() if consent else ()
        return kwargs

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)
        form = context.get("form")
        if "application" not in context and form is not None:  # a POST shown again with errors
            context["application"] = self._application(form.data.get("client_id"))
            context["redirect_uri"] = form.data.get("redirect_uri", "")
        context["redirect_host"] = redirect_host(context.get("redirect_uri") or "")
        application = context.get("application")
        context["client_url"] = application.client_id if application and "://" in application.client_id else ""
        return context

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().render_to_response(context, **kwargs)
        origin = _origin(context.get("redirect_uri") or "")
        policy = settings.MEMORYHUB_CONTENT_SECURITY_POLICY
        if origin and policy and "form-action 'self'" in policy:
            # The site's policy lets forms post only to this origin, and browsers apply that to the
            # redirect after the post too: the consent form's Allow/Deny end at the client's
            # redirect URI (already checked: https or loopback), so this page allows that origin.
            response[CSP_HEADER] = policy.replace("form-action 'self'", f"form-action 'self' {origin}")
        return response

    @staticmethod
    def _refusal(request: HttpRequest) -> tuple[str, str] | None:
        """(error, description) for what is refused before the user is asked anything."""
        foreign = foreign_resources(request.GET.getlist("resource"), request_origin(request))
        if foreign:
            return "invalid_target", f"The resource {foreign[0]!r} is not this server's."
        # RFC 7636: a challenge without a method is "plain". DOT refuses plain only when the code is
        # issued, after the user consented; refuse it before they are asked.
        if request.GET.get("code_challenge") and request.GET.get("code_challenge_method", "plain") != "S256":
            return "invalid_request", 'Only the "S256" code_challenge_method is supported.'
        return None

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            try:  # the client and its redirect URI first: an error goes only to a registered URI
                _, credentials = self.validate_authorization_request(request)
            except OAuthToolkitError as error:
                return self.error_response(error, application=None)
            refused = OAuthToolkitError(
                error=CustomOAuth2Error(error=refusal[0], description=refusal[1], state=credentials.get("state")),
                redirect_uri=credentials["redirect_uri"],
            )
            return self.error_response(refused, self._application(credentials["client_id"]))
        response: HttpResponse = super().get(request, *args, **kwargs)
        return response

    def form_valid(self, form: ConsentForm) -> HttpResponse:
        if not form.cleaned_data.get("allow"):
            return super().form_valid(form)  # DOT redirects with access_denied
        application = self._application(form.cleaned_data["client_id"])
        if application is None:
            return super().form_valid(form)  # DOT answers an unknown client
        try:
            # The consent and the code stand or fall together: if DOT refuses to issue the code, its
            # error response is returned and the consent (and its audit record) rolled back.
            with transaction.atomic():
                services.oauth_consent_save(
                    user=self.request.user, application=application, grants=form.cleaned_data["grants"]
                )
                response: HttpResponse = super().form_valid(form)
                if not self._issued(response):
                    transaction.set_rollback(True)
                return response
        except DomainError as error:
            form.add_domain_error(error)
            return self.form_invalid(form)

    @staticmethod
    def _issued(response: HttpResponse) -> bool:
        location = response.get("Location", "") if response.status_code in (301, 302, 303, 307, 308) else ""
        return "code=" in urlsplit(location).query


# --- Connected apps -----------------------------------------------------------------------------


def _user(request: HttpRequest) -> AbstractBaseUser:
    """The signed-in user (the views are login_required)."""
    assert isinstance(request.user, AbstractBaseUser)
    return request.user


def _consents(user: AbstractBaseUser) -> list[dict[str, Any]]:
    rows = OAuthConsent.objects.filter(user_id=user.pk).select_related("application").order_by("-updated_at")
    last_tokens = dict(
        get_access_token_model()
        .objects.filter(user_id=user.pk, application__isnull=False)
        .values_list("application_id")
        .annotate(last=Max("created"))
    )
    return [
        {
            "consent": consent,
            "application": consent.application,
            "name": consent.application.name or consent.application.client_id,
            "hosts": sorted({redirect_host(uri) for uri in consent.application.redirect_uris.split()}),
            "grants": consent.to_grants(),
            "last_token": last_tokens.get(consent.application_id),
        }
        for consent in rows
    ]


@never_cache
@login_required
@require_safe
def apps(request: HttpRequest) -> HttpResponse:
    """The user's connected apps: what each may reach, where it sends them, when it last got a token."""
    return render(request, "access/apps.html", {"section": "apps", "apps": _consents(_user(request))})


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def app_revoke(request: HttpRequest, application_id: int) -> HttpResponse:
    """GET asks for confirmation; only a POST of that page's form (`confirm`) disconnects the app
    (`services.oauth_revoke`: its consent and all its tokens), then back to the list."""
    consent = get_object_or_404(
        OAuthConsent.objects.select_related("application"), user_id=request.user.pk, application_id=application_id
    )
    application = consent.application
    name = application.name or application.client_id
    if request.method != "POST":
        context = {
            "section": "apps",
            "consent": consent,
            "name": name,
            "hosts": sorted({redirect_host(uri) for uri in application.redirect_uris.split()}),
            "grants": consent.to_grants(),
        }
        return render(request, "access/app_revoke.html", context)
    if request.POST.get("confirm") != "yes":
        return redirect("app-revoke", application_id=application_id)
    user = _user(request)
    services.oauth_revoke(user=user, application=application, actor=user, source="self-service")
    messages.success(request, f"“{name}” is disconnected: its tokens no longer work.")
    return redirect("apps")
