"""Sign-in throttling on `/accounts/login/` and `/admin/login/`: per account and per client
address, with a clear message, a 429, and an audit event.

Driven through Django's test client (the whole middleware stack) against the real database and
the configured cache. The client address is the request's peer address (REMOTE_ADDR, which daphne
takes from X-Forwarded-For only when started with --proxy-headers behind a trusted proxy), so a
forged X-Forwarded-For header does not escape the limit.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from access.models import AuditEvent
from tests.conftest import PASSWORD, Persona

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
PER_ACCOUNT = settings.MEMORYHUB_SIGNIN_THROTTLE["FAILURES_PER_ACCOUNT"]
PER_ADDRESS = settings.MEMORYHUB_SIGNIN_THROTTLE["FAILURES_PER_ADDRESS"]


def sign_in(client: Client, path: str, username: str, password: str, address: str = "203.0.113.7", **extra: str):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address, **extra)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("path", [LOGIN, ADMIN_LOGIN])
def test_wrong_passwords_lock_the_account_even_for_the_right_password(client: Client, root_key: Persona, path):
    for _ in range(PER_ACCOUNT):
        response = sign_in(client, path, "root", "wrong")
        assert response.status_code == 200
        assert not signed_in(client)

    refused = sign_in(client, path, "root", PASSWORD)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "Too many failed sign-ins" in refused.content.decode()
    assert not signed_in(client)
    # Per account: another address does not help.
    assert sign_in(client, path, "root", PASSWORD, address="198.51.100.9").status_code == 429
    assert not signed_in(client)

    event = AuditEvent.objects.get(action="signin.throttled")
    assert event.subject == "root"
    assert event.detail["limit"] == "account"
    assert event.detail["address"] == "203.0.113.7"
    assert event.detail["page"] == path


def test_an_account_that_does_not_exist_is_throttled_the_same_way(client: Client, db):
    for _ in range(PER_ACCOUNT):
        assert sign_in(client, LOGIN, "nobody", "wrong").status_code == 200
    assert sign_in(client, LOGIN, "nobody", "wrong").status_code == 429


def test_one_address_trying_many_accounts_is_throttled_and_others_are_not(
    client: Client, alice_key: Persona, bob_key: Persona
):
    for index in range(PER_ADDRESS):
        assert sign_in(client, LOGIN, f"guess{index}", "wrong").status_code == 200

    refused = sign_in(client, LOGIN, "alice", PASSWORD)
    assert refused.status_code == 429
    assert not signed_in(client)
    # A forged X-Forwarded-For from the same peer is the same address.
    assert sign_in(client, LOGIN, "alice", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.1").status_code == 429
    assert AuditEvent.objects.filter(action="signin.throttled", detail__limit="address").exists()

    # Alice and bob from their own addresses are not affected.
    other = Client()
    assert sign_in(other, LOGIN, "bob", PASSWORD, address="198.51.100.9").status_code == 302
    assert signed_in(other)


def test_a_successful_sign_in_clears_the_accounts_failures(client: Client, alice_key: Persona):
    for _ in range(2):
        for _ in range(PER_ACCOUNT - 1):
            assert sign_in(client, LOGIN, "alice", "wrong").status_code == 200
        response = sign_in(client, LOGIN, "alice", PASSWORD)
        assert response.status_code == 302
        assert response["Location"] == reverse("keys")
        client.post(reverse("logout"))
