"""One authentication path: every accepted header, the same refusal for every bad key."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.test import Client
from django.utils import timezone

from access import authentication, services
from access.exceptions import NotAuthenticated
from access.models import ApiKey, AuditEvent
from tests.conftest import Persona

LIST = "/v1/memory/banks/list"


@pytest.mark.parametrize(
    "header",
    [
        {"HTTP_X_API_KEY": "{key}"},
        {"HTTP_AUTHORIZATION": "ApiKey {key}"},
        {"HTTP_AUTHORIZATION": "Bearer {key}"},
        {"HTTP_AUTHORIZATION": "bearer {key}"},
        {"HTTP_X_MOMOAI_KEY": "{key}"},
    ],
)
def test_it_accepts_the_key_in_every_documented_header(client: Client, alice_key: Persona, header: dict) -> None:
    headers = {name: value.format(key=alice_key.secret) for name, value in header.items()}
    response = client.get(LIST, **headers)
    assert response.status_code == 200, response.content
    assert response.json() == [alice_key.namespace]


def test_a_key_in_the_query_string_is_refused_outside_sse(client: Client, alice_key: Persona) -> None:
    assert client.get(f"{LIST}?key={alice_key.secret}").status_code == 401


def test_query_keys_are_allowed_only_for_event_stream_gets() -> None:
    assert authentication.query_key_allowed("GET", "text/event-stream")
    assert not authentication.query_key_allowed("POST", "text/event-stream")
    assert not authentication.query_key_allowed("GET", "application/json")
    query = {"key": "mh_x"}
    assert authentication.key_from_request({}, query, allow_query=True) == "mh_x"
    assert authentication.key_from_request({}, query, allow_query=False) is None


def _bad_keys(persona: Persona) -> dict[str, dict[str, str]]:
    tampered = persona.secret[:-1] + ("A" if persona.secret[-1] != "A" else "B")
    return {
        "missing": {},
        "empty": {"HTTP_X_API_KEY": ""},
        "garbage": {"HTTP_X_API_KEY": "not-a-key"},
        "unknown prefix": {"HTTP_X_API_KEY": "mh_00000000_" + "a" * 43},
        "wrong secret": {"HTTP_X_API_KEY": tampered},
        "wrong scheme": {"HTTP_AUTHORIZATION": f"Basic {persona.secret}"},
    }


def test_every_bad_key_gets_the_same_401(client: Client, alice_key: Persona) -> None:
    bodies = set()
    for label, headers in _bad_keys(alice_key).items():
        response = client.get(LIST, **headers)
        assert response.status_code == 401, label
        assert response["WWW-Authenticate"].startswith("ApiKey")
        bodies.add(response.content)
    assert len(bodies) == 1, bodies


def test_revoked_and_expired_keys_look_exactly_like_unknown_ones(client: Client, alice_key: Persona) -> None:
    unknown = client.get(LIST, HTTP_X_API_KEY="mh_00000000_" + "a" * 43)
    services.api_key_revoke(key=alice_key.key, source="command")
    revoked = client.get(LIST, **alice_key.headers)

    expiring = services.api_key_create(
        owner=alice_key.user,
        name="short-lived",
        grants=[("org:alice:*", "read")],
        expires_at=timezone.now() + dt.timedelta(seconds=30),
        source="command",
    )
    assert client.get(LIST, HTTP_X_API_KEY=expiring.secret).status_code == 200
    ApiKey.objects.filter(pk=expiring.key.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    expired = client.get(LIST, HTTP_X_API_KEY=expiring.secret)

    assert unknown.status_code == revoked.status_code == expired.status_code == 401
    assert unknown.content == revoked.content == expired.content


def test_a_deactivated_owner_disables_their_keys(client: Client, alice_key: Persona) -> None:
    get_user_model().objects.filter(pk=alice_key.user.pk).update(is_active=False)
    assert client.get(LIST, **alice_key.headers).status_code == 401


def test_only_the_hash_of_the_secret_is_stored(alice_key: Persona) -> None:
    row = ApiKey.objects.get(pk=alice_key.key.pk)
    assert alice_key.secret.startswith(f"mh_{row.prefix}_")
    assert alice_key.secret not in row.secret_hash
    assert len(row.secret_hash) == 64
    assert authentication.authenticate(alice_key.secret).key_id == row.pk
    with pytest.raises(NotAuthenticated):
        authentication.authenticate(row.secret_hash)


def test_last_used_is_written_at_most_once_a_minute(
    client: Client, alice_key: Persona, django_assert_num_queries
) -> None:
    assert ApiKey.objects.get(pk=alice_key.key.pk).last_used_at is None
    client.get(LIST, **alice_key.headers)
    first = ApiKey.objects.get(pk=alice_key.key.pk).last_used_at
    assert first is not None
    # Later requests in the same minute write nothing: the one query Django sees lists the
    # namespaces (the key and its grants are read on the sqlite3 connection underneath).
    with django_assert_num_queries(1):
        client.get(LIST, **alice_key.headers)
    assert ApiKey.objects.get(pk=alice_key.key.pk).last_used_at == first


def test_key_lifecycle_is_audited(alice_key: Persona, root_key: Persona) -> None:
    services.grant_set(key=alice_key.key, pattern="public:*", permission="read", actor=root_key.user, source="admin")
    services.grant_set(key=alice_key.key, pattern="public:*", permission="write", actor=root_key.user, source="admin")
    services.grant_remove(key=alice_key.key, pattern="public:*", actor=root_key.user, source="admin")
    services.api_key_revoke(key=alice_key.key, actor=root_key.user, source="admin")
    services.api_key_revoke(key=alice_key.key, actor=root_key.user, source="admin")  # no-op, not audited
    events = list(AuditEvent.objects.filter(key=alice_key.key).order_by("id").values_list("action", "actor_name"))
    assert events == [
        ("key.created", ""),
        ("grant.added", "root"),
        ("grant.changed", "root"),
        ("grant.removed", "root"),
        ("key.revoked", "root"),
    ]
    created = AuditEvent.objects.get(key=alice_key.key, action="key.created")
    assert created.detail["grants"] == ["org:alice:*=write"]
    assert created.subject == "alice"
    assert alice_key.secret not in str(created.detail)


def test_the_last_use_marker_is_asked_for_once_a_minute_per_process(alice_key: Persona) -> None:
    marker = f"access:last-used:{alice_key.key.pk}"
    authentication.authenticate(alice_key.secret)
    assert caches["default"].get(marker) == 1
    caches["default"].delete(marker)
    # The same process does not ask the cache again within the minute (not on every request):
    # the marker stays unset and nothing is written.
    first = ApiKey.objects.get(pk=alice_key.key.pk).last_used_at
    authentication.authenticate(alice_key.secret)
    assert caches["default"].get(marker) is None
    assert ApiKey.objects.get(pk=alice_key.key.pk).last_used_at == first
