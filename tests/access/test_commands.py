"""Command-line key management: scripts capture exactly the key from stdout."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from access import authentication
from access.exceptions import NotAuthenticated
from access.models import ApiKey, AuditEvent
from access.permissions import Permission


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_create_api_key_prints_only_the_key_and_creates_the_user() -> None:
    out = run(
        "create_api_key",
        "--user",
        "ci",
        "--name",
        "pipeline",
        "--grant",
        "org:ci:*=write",
        "--grant",
        "public:*=read",
        "--default-namespace",
        "org:ci:main",
        "--expires-in-days",
        "30",
    )
    secret = out.strip()
    assert out == secret + "\n"  # nothing else on stdout
    access = authentication.authenticate(secret)
    assert access.can("org:ci:main", Permission.WRITE)
    assert access.can("public:docs", Permission.READ)
    assert not access.can("public:docs", Permission.WRITE)
    assert access.default_namespace == "org:ci:main"
    user = get_user_model().objects.get(username="ci")
    assert not user.has_usable_password()
    key = ApiKey.objects.get(owner=user)
    assert key.name == "pipeline"
    assert key.expires_at is not None
    assert AuditEvent.objects.filter(key=key, action="key.created", source="command").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "at least one --grant"),
        (["--grant", "org:*"], "PATTERN=read"),
        (["--grant", "org:te*=read"], "not a namespace pattern"),
        (["--grant", "org:*=admin"], "read' or 'write"),
        (["--grant", "org:*=read", "--default-namespace", "bad ns"], "not valid"),
        (["--grant", "org:*=read", "--expires-in-days", "0"], "at least 1"),
    ],
)
def test_create_api_key_explains_bad_arguments(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("create_api_key", "--user", "ci", *args)
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_revoke_api_key_by_prefix_stops_the_key_at_once() -> None:
    secret = run("create_api_key", "--user", "ci", "--grant", "*=read").strip()
    prefix = ApiKey.objects.get().prefix
    assert "Revoked" in run("revoke_api_key", prefix)
    with pytest.raises(NotAuthenticated):
        authentication.authenticate(secret)
    assert "already revoked" in run("revoke_api_key", f"mh_{prefix}")
    assert AuditEvent.objects.filter(action="key.revoked").count() == 1
    with pytest.raises(CommandError, match="no API key"):
        run("revoke_api_key", "ffffffff")


@pytest.mark.django_db
def test_revoke_accepts_a_whole_key_without_echoing_the_secret() -> None:
    secret = run("create_api_key", "--user", "ci", "--grant", "*=read").strip()
    out = run("revoke_api_key", secret)
    assert "Revoked" in out
    assert secret not in out


@pytest.mark.django_db
def test_bootstrap_creates_an_admin_and_an_operator_key_once() -> None:
    first = run("bootstrap")
    assert "password:" in first
    assert "/mcp" in first  # where MCP clients connect
    secret = next(line.strip() for line in first.splitlines() if line.strip().startswith("mh_"))
    access = authentication.authenticate(secret)
    assert access.is_operator()
    # The namespace every docs example uses, so examples without one write where the others read.
    assert access.default_namespace == "org:team:project"
    assert "org:team:project" in first
    assert get_user_model().objects.get(username="admin").is_superuser

    second = run("bootstrap", "--base-url", "http://127.0.0.1:9000")
    assert "password:" not in second
    assert "mh_" not in second
    assert ApiKey.objects.count() == 1
    # A second start still says where everything is, and how to get back in.
    for url in ("/admin/", "/keys/", "/mcp", "/docs", "/product/docs"):
        assert f"http://127.0.0.1:9000{url}" in second
    assert "manage.py changepassword admin" in second
    assert "manage.py create_api_key" in second
