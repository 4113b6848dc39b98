"""Self-service pages: sign-in, "My keys", connected OAuth apps (oauth.py), and namespace browsing
(see views.py)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from access.forms import SignInForm
from access.signin import SignInView
from kernel import url_converters  # noqa: F401  (registers <anytext:...>)
from web import oauth, views

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "accounts/login/",
        SignInView.as_view(authentication_form=SignInForm, redirect_authenticated_user=True),
        name="login",
    ),
    # POST only (Django 5): a link or an image tag on another site cannot sign the user out.
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("keys/", views.keys, name="keys"),
    path("keys/<str:prefix>/revoke/", views.key_revoke, name="key-revoke"),
    path("apps/", oauth.apps, name="apps"),
    path("apps/<int:application_id>/revoke/", oauth.app_revoke, name="app-revoke"),
    path("namespaces/", views.namespace_list, name="namespaces"),
    path("namespaces/<str:namespace>/", views.namespace_detail, name="namespace"),
    path("namespaces/<str:namespace>/entities/<anytext:name>", views.entity_detail, name="entity"),
]
