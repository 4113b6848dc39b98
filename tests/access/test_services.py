"""Key creation rules: self-service keys stay inside what operators allow."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from access import selectors, services
from access.exceptions import InvalidGrant, InvalidKeyRequest
from access.models import AuditEvent
from access.permissions import Grant, Permission


@pytest.fixture
def dana(db):
    return get_user_model().objects.create_user(username="dana", password="x")


def test_a_user_may_grant_their_own_space_by_default(dana) -> None:
    assert selectors.allowed_grants(dana) == [Grant("user:dana:*", Permission.WRITE)]
    created = services.api_key_create_for_self(
        user=dana, name="laptop", grants=[("user:dana:*", "write")], default_namespace="user:dana:default"
    )
    assert created.key.to_access().can("user:dana:default", Permission.WRITE)
    event = AuditEvent.objects.get(key=created.key)
    assert (event.action, event.source, event.actor_name) == ("key.created", "self-service", "dana")


@pytest.mark.parametrize(
    "grant",
    [("user:other:*", "read"), ("*", "read"), ("user:*", "read"), ("user:dana", "write"), ("org:team:x", "read")],
)
def test_a_user_cannot_grant_outside_their_allowances(dana, grant) -> None:
    with pytest.raises(InvalidKeyRequest):
        services.api_key_create_for_self(user=dana, name="k", grants=[grant])


def test_operator_allowances_extend_what_a_user_may_grant(dana, root_key) -> None:
    services.allowance_set(user=dana, pattern="org:team:*", permission="read", actor=root_key.user, source="admin")
    services.api_key_create_for_self(user=dana, name="reader", grants=[("org:team:project", "read")])
    with pytest.raises(InvalidKeyRequest, match="may not grant write"):
        services.api_key_create_for_self(user=dana, name="writer", grants=[("org:team:project", "write")])
    services.allowance_set(user=dana, pattern="org:team:*", permission="write", actor=root_key.user, source="admin")
    services.api_key_create_for_self(user=dana, name="writer", grants=[("org:team:project", "write")])
    actions = list(
        AuditEvent.objects.filter(subject="dana", action__startswith="allowance").values_list("action", flat=True)
    )
    assert sorted(actions) == ["allowance.added", "allowance.changed"]


def test_the_default_namespace_must_be_covered_by_the_key(dana) -> None:
    with pytest.raises(InvalidKeyRequest, match="not covered"):
        services.api_key_create_for_self(
            user=dana, name="k", grants=[("user:dana:*", "write")], default_namespace="org:x"
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"expires_at": timezone.now() - dt.timedelta(days=1)}, "future"),
        ({"default_namespace": "not a namespace"}, "not valid"),
        ({"grants": []}, "at least one"),
    ],
)
def test_it_rejects_bad_key_requests_with_a_clear_message(dana, kwargs, message) -> None:
    arguments = {"user": dana, "name": "k", "grants": [("user:dana:*", "read")], **kwargs}
    with pytest.raises(InvalidKeyRequest, match=message):
        services.api_key_create_for_self(**arguments)


def test_bad_permissions_and_patterns_are_refused(dana) -> None:
    with pytest.raises(InvalidGrant):
        services.api_key_create(owner=dana, name="k", grants=[("org:*", "admin")], source="command")
    with pytest.raises(InvalidGrant):
        services.api_key_create(owner=dana, name="k", grants=[("org:te*", "read")], source="command")


def test_repeating_a_pattern_keeps_the_stronger_permission(dana) -> None:
    created = services.api_key_create(
        owner=dana, name="k", grants=[("org:*", "read"), ("org:*", "write")], source="command"
    )
    assert list(created.key.grants.values_list("pattern", "permission")) == [("org:*", "write")]


def test_superusers_may_grant_everything(root_key) -> None:
    assert selectors.allowed_grants(root_key.user) == [Grant("*", Permission.WRITE)]
