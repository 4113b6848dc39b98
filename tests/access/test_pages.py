"""The self-service pages in the browser: sign-in, "My keys", namespace browsing.

Driven through Django's test Client against the real database; keys made on the page are
checked with the same `authenticate` every API uses.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from access import services
from access.authentication import authenticate
from access.exceptions import NotAuthenticated
from access.models import ApiKey
from access.permissions import Permission
from access.secrets import prefix_of
from graph import services as graph
from mcp_endpoint.models import McpSession
from tests.conftest import PASSWORD
from web import views

ALICE_OWN = "user:alice:default"
BOB_OWN = "user:bob:default"


@pytest.fixture
def alice_client(client: Client, alice_key) -> Client:
    client.force_login(alice_key.user)
    return client


def key_form(**overrides: str) -> dict[str, str]:
    """What the create form posts for alice by default: her own space with write, 90 days, and a
    fresh submission token (each rendered form carries its own)."""
    data = {
        "submission": uuid.uuid4().hex,
        "name": "laptop",
        "grant_0_pattern": "user:alice:*",
        "grant_0_permission": "write",
        "expires": "90",
        "expires_on": "",
        "default_namespace": ALICE_OWN,
    }
    data.update(overrides)
    return data


def secret_on(html: str) -> str | None:
    match = re.search(r'id="new-key-secret"[^>]*>([^<]+)<', html)
    return match.group(1) if match else None


def add_entities(namespace: str, *names: str, observation: str = "likes tea") -> None:
    graph.create_entities(
        namespace=namespace,
        entities=[{"name": name, "entityType": "person", "observations": [f"{name} {observation}"]} for name in names],
    )


# --- sign-in ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/keys/", "/namespaces/", f"/namespaces/{ALICE_OWN}/", f"/namespaces/{ALICE_OWN}/entities/Ada"],
)
def test_pages_redirect_anonymous_visitors_to_sign_in(client, db, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_home_sends_visitors_to_sign_in_and_users_to_their_keys(client, alice_key):
    assert client.get("/")["Location"] == reverse("login")
    client.force_login(alice_key.user)
    assert client.get("/")["Location"] == reverse("keys")


def test_signing_in_with_the_password_lands_on_my_keys(client, alice_key):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'<html lang="en">' in page.content
    assert b'for="id_username"' in page.content

    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("keys")


def test_a_wrong_password_is_refused_on_the_form(client, alice_key):
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})

    assert response.status_code == 200
    assert b"correct username and password" in response.content
    assert "_auth_user_id" not in client.session


def test_signing_out_takes_a_post_not_a_link(alice_client):
    assert alice_client.get(reverse("logout")).status_code == 405

    response = alice_client.post(reverse("logout"))

    assert response["Location"] == reverse("login")
    assert alice_client.get(reverse("keys")).status_code == 302


def test_staff_see_a_link_to_the_admin_and_others_do_not(client, alice_key, root_key):
    client.force_login(alice_key.user)
    assert b'href="/admin/"' not in client.get(reverse("keys")).content
    client.force_login(root_key.user)
    assert b'href="/admin/"' in client.get(reverse("keys")).content


# --- my keys: create --------------------------------------------------------------------------------


def test_create_form_offers_the_users_own_space_with_the_default_namespace_prefilled(alice_client):
    html = alice_client.get(reverse("keys")).content.decode()

    assert 'name="grant_0_pattern"' in html
    assert 'value="user:alice:*"' in html
    assert f'value="{ALICE_OWN}"' in html
    assert re.search(r'<option value="write" selected>', html)


def test_a_new_keys_secret_is_shown_once_and_authenticates(alice_client, alice_key):
    created = alice_client.post(reverse("keys"), key_form())

    # Post/Redirect/Get: reloading the page that shows the secret does not post the form again.
    assert created.status_code == 302
    assert created["Location"] == reverse("keys")
    response = alice_client.get(reverse("keys"))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    secret = secret_on(html)
    assert secret
    assert "will not be shown again" in html
    key = ApiKey.objects.get(owner=alice_key.user, name="laptop")
    assert prefix_of(secret) == key.prefix
    access = authenticate(secret)
    assert access.key_id == key.pk
    assert access.can("user:alice:notes", Permission.WRITE)
    assert not access.can("org:alice:notes", Permission.READ)
    assert access.default_namespace == ALICE_OWN
    # Never again: not on the list page, not in the session.
    listing = alice_client.get(reverse("keys")).content.decode()
    assert key.prefix in listing
    assert secret not in listing
    assert secret not in str(dict(alice_client.session.items()))


def test_a_key_can_be_narrowed_to_one_namespace_read_only_with_an_expiry_date(alice_client, alice_key):
    response = alice_client.post(
        reverse("keys"),
        key_form(
            grant_0_pattern="user:alice:project",
            grant_0_permission="read",
            expires="date",
            expires_on="2999-01-31",
            default_namespace="",
        ),
        follow=True,
    )

    access = authenticate(secret_on(response.content.decode()))
    assert access.can("user:alice:project", Permission.READ)
    assert not access.can("user:alice:project", Permission.WRITE)
    assert not access.can("user:alice:other", Permission.READ)
    key = ApiKey.objects.get(pk=access.key_id)
    assert key.expires_at.date().isoformat() == "2999-01-31"
    assert key.default_namespace == ""


def test_a_grant_outside_the_users_allowances_is_refused_next_to_the_field(alice_client, alice_key):
    response = alice_client.post(
        reverse("keys"), key_form(grant_0_pattern="org:bob:*", default_namespace="org:bob:notes"), follow=True
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert secret_on(html) is None
    assert re.search(r'id="id_grant_0_pattern_error"[^>]*><li>you may not grant write on &#x27;org:bob:\*&#x27;', html)
    assert 'aria-invalid="true"' in html
    assert not ApiKey.objects.filter(owner=alice_key.user, name="laptop").exists()


def test_write_is_only_offered_where_the_operator_allowed_write(alice_client, alice_key):
    services.allowance_set(user=alice_key.user, pattern="team:shared", permission="read", source="command")
    html = alice_client.get(reverse("keys")).content.decode()
    select = re.search(r'<select name="grant_1_permission".*?</select>', html, re.S).group(0)
    assert 'value="read"' in select
    assert 'value="write"' not in select

    response = alice_client.post(
        reverse("keys"),
        key_form(grant_1_pattern="team:shared", grant_1_permission="write"),
        follow=True,
    )

    assert secret_on(response.content.decode()) is None
    assert "You may not grant “write” here." in response.content.decode()
    assert not ApiKey.objects.filter(owner=alice_key.user, name="laptop").exists()


def test_an_operator_allowance_can_be_granted_read_only(alice_client, alice_key):
    services.allowance_set(user=alice_key.user, pattern="team:shared", permission="read", source="command")

    response = alice_client.post(
        reverse("keys"), key_form(grant_1_pattern="team:shared", grant_1_permission="read"), follow=True
    )

    access = authenticate(secret_on(response.content.decode()))
    assert access.can("team:shared", Permission.READ)
    assert access.can(ALICE_OWN, Permission.WRITE)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": ""}, "name", "This field is required."),
        ({"grant_0_permission": ""}, None, "choose at least one namespace"),
        ({"grant_0_pattern": "not a pattern!"}, "grant_0_pattern", "is not a namespace pattern"),
        ({"default_namespace": "org:other:x"}, "default_namespace", "is not covered by the key"),
        ({"expires": "date"}, "expires_on", "Choose the day the key stops working."),
        ({"expires": "date", "expires_on": "2001-01-01"}, "expires_on", "the expiry must be in the future"),
    ],
)
def test_invalid_key_requests_are_refused_with_the_reason_on_the_form(
    alice_client, alice_key, overrides, field, message
):
    response = alice_client.post(reverse("keys"), key_form(**overrides))

    assert response.status_code == 200
    html = response.content.decode()
    assert secret_on(html) is None
    assert message in html.replace("&#x27;", "'")
    if field:
        assert f'id="id_{field}_error"' in html
    assert not ApiKey.objects.filter(owner=alice_key.user, name="laptop").exists()


def test_a_superuser_may_grant_any_namespace(client, root_key):
    client.force_login(root_key.user)

    response = client.post(
        reverse("keys"),
        {
            "submission": uuid.uuid4().hex,
            "name": "ops",
            "grant_0_pattern": "user:root:*",
            "grant_0_permission": "",
            "grant_1_pattern": "org:*",
            "grant_1_permission": "read",
            "expires": "never",
            "default_namespace": "",
        },
        follow=True,
    )

    access = authenticate(secret_on(response.content.decode()))
    assert access.can("org:bob:notes", Permission.READ)
    assert not access.can("org:bob:notes", Permission.WRITE)
    assert ApiKey.objects.get(pk=access.key_id).expires_at is None


def test_reloading_or_resubmitting_never_creates_a_second_key(alice_client, alice_key):
    form = key_form()
    first = alice_client.post(reverse("keys"), form)
    assert first.status_code == 302
    shown = alice_client.get(reverse("keys")).content.decode()
    secret = secret_on(shown)
    assert secret

    # The same form again (a reload of a POST answer, Back and submit, a double click): no new key.
    again = alice_client.post(reverse("keys"), form)
    assert again.status_code == 302
    page = alice_client.get(reverse("keys")).content.decode()
    assert ApiKey.objects.filter(owner=alice_key.user, name="laptop").count() == 1
    assert secret_on(page) is None
    assert "already created" in page
    # A new form (a new submission token) creates a new key.
    alice_client.post(reverse("keys"), key_form())
    assert ApiKey.objects.filter(owner=alice_key.user, name="laptop").count() == 2


def test_a_form_without_a_submission_token_creates_nothing(alice_client, alice_key):
    form = key_form()
    del form["submission"]
    response = alice_client.post(reverse("keys"), form)
    assert response.status_code == 200
    assert "reload the page" in response.content.decode()
    assert not ApiKey.objects.filter(owner=alice_key.user, name="laptop").exists()


def stored_sessions() -> str:
    """Every session as the server stores it (decoded), plus its raw form."""
    return " ".join(f"{row.session_data} {row.get_decoded()}" for row in Session.objects.all())


def test_the_secret_waits_for_the_next_page_sealed_and_is_gone_after_it(alice_client, alice_key):
    created = alice_client.post(reverse("keys"), key_form())
    key = ApiKey.objects.get(owner=alice_key.user, name="laptop")
    # Between the POST and the GET that shows it: neither the session store nor the cookie
    # holds the secret in clear (each holds half of a one-time pad).
    waiting = stored_sessions()
    assert "new_key" in waiting
    for cookie in created.cookies.values():
        assert key.prefix not in cookie.value

    secret = secret_on(alice_client.get(reverse("keys")).content.decode())
    assert secret
    assert prefix_of(secret) == key.prefix
    assert secret not in waiting
    assert "new_key" not in stored_sessions()
    assert secret_on(alice_client.get(reverse("keys")).content.decode()) is None


def test_a_secret_not_fetched_in_time_is_never_shown(alice_client, alice_key):
    alice_client.post(reverse("keys"), key_form())
    session = alice_client.session
    session["new_key"]["at"] -= views.NEW_KEY_SECONDS + 1
    session.save()
    page = alice_client.get(reverse("keys")).content.decode()
    assert secret_on(page) is None
    assert "new_key" not in stored_sessions()
    assert ApiKey.objects.filter(owner=alice_key.user, name="laptop").count() == 1


# --- my keys: list and revoke ----------------------------------------------------------------------


def test_my_keys_lists_only_my_keys_with_their_grants(alice_client, alice_key, bob_key):
    html = alice_client.get(reverse("keys")).content.decode()

    assert alice_key.key.prefix in html
    assert "org:alice:*" in html
    assert bob_key.key.prefix not in html
    assert alice_key.secret not in html


def test_revoke_asks_for_confirmation_first_and_says_who_used_the_key(alice_client, alice_key, bob_key):
    McpSession.objects.create(
        session_id="s1",
        key=alice_key.key,
        transport="http",
        client_info={"name": "<b>Claude Desktop</b>", "version": "0.9"},
        protocol_version="2025-06-18",
    )
    McpSession.objects.create(session_id="s2", key=alice_key.key, transport="sse", client_info={"name": "Cursor"})
    McpSession.objects.create(session_id="s3", key=bob_key.key, transport="http", client_info={"name": "BobTool"})
    ApiKey.objects.filter(pk=alice_key.key.pk).update(last_used_at="2026-01-02T03:04:00Z")

    listing = alice_client.get(reverse("keys")).content.decode()
    confirm_url = reverse("key-revoke", args=[alice_key.key.prefix])
    assert f'href="{confirm_url}"' in listing
    # The list itself has no form that revokes in one click.
    assert f'action="{confirm_url}"' not in listing

    page = alice_client.get(confirm_url)
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    html = page.content.decode()
    assert "Revoke the key" in html
    assert alice_key.key.prefix in html
    assert "2026-01-02 03:04" in html
    assert "&lt;b&gt;Claude Desktop&lt;/b&gt; 0.9" in html
    assert "<b>Claude Desktop" not in html
    assert "Cursor" in html
    assert "BobTool" not in html
    assert f'action="{confirm_url}"' in html
    assert authenticate(alice_key.secret).key_id == alice_key.key.pk  # looking revokes nothing


def test_a_revoke_post_without_the_confirmation_only_leads_to_the_question(alice_client, alice_key):
    url = reverse("key-revoke", args=[alice_key.key.prefix])
    response = alice_client.post(url)
    assert response.status_code == 302
    assert response["Location"] == url
    assert authenticate(alice_key.secret).key_id == alice_key.key.pk


def test_revoking_my_key_stops_it_working(alice_client, alice_key):
    response = alice_client.post(reverse("key-revoke", args=[alice_key.key.prefix]), {"confirm": "yes"})

    assert response.status_code == 302
    assert response["Location"] == reverse("keys")
    with pytest.raises(NotAuthenticated):
        authenticate(alice_key.secret)
    page = alice_client.get(reverse("keys")).content.decode()
    assert "is revoked" in page
    assert "state-revoked" in page


def test_revoking_someone_elses_key_is_not_found_and_leaves_it_working(alice_client, bob_key):
    response = alice_client.post(reverse("key-revoke", args=[bob_key.key.prefix]), {"confirm": "yes"})

    assert response.status_code == 404
    assert alice_client.get(reverse("key-revoke", args=[bob_key.key.prefix])).status_code == 404
    assert authenticate(bob_key.secret).key_id == bob_key.key.pk


def test_revoking_takes_a_post(alice_client, alice_key):
    response = alice_client.get(reverse("key-revoke", args=[alice_key.key.prefix]), {"confirm": "yes"})

    assert response.status_code == 200
    assert authenticate(alice_key.secret).key_id == alice_key.key.pk
    assert alice_client.delete(reverse("key-revoke", args=[alice_key.key.prefix])).status_code == 405


def test_forms_without_the_csrf_token_are_refused(alice_key):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice_key.user)
    client.get(reverse("keys"))  # sets the csrftoken cookie

    forged_create = client.post(reverse("keys"), key_form())
    forged_revoke = client.post(reverse("key-revoke", args=[alice_key.key.prefix]), {"confirm": "yes"})

    assert forged_create.status_code == 403
    assert forged_revoke.status_code == 403
    assert not ApiKey.objects.filter(name="laptop").exists()
    assert authenticate(alice_key.secret).key_id == alice_key.key.pk
    token = client.cookies["csrftoken"].value
    genuine = client.post(
        reverse("key-revoke", args=[alice_key.key.prefix]), {"csrfmiddlewaretoken": token, "confirm": "yes"}
    )
    assert genuine.status_code == 302


# --- namespaces ------------------------------------------------------------------------------------


def test_namespace_list_shows_only_namespaces_i_can_read_with_their_counts(alice_client, alice_key, bob_key):
    add_entities(ALICE_OWN, "Ada", "Grace")
    add_entities(BOB_OWN, "Bobby")
    add_entities("org:alice:notes", "Hidden")  # alice's key reaches it, but no operator allowed it to her

    html = alice_client.get(reverse("namespaces")).content.decode()

    assert ALICE_OWN in html
    assert re.search(r'>user:alice:default</a></th>\s*<td class="number">2</td>\s*<td class="number">2</td>', html)
    assert BOB_OWN not in html
    assert "org:alice:notes" not in html


def test_an_operator_allowance_makes_a_namespace_visible(alice_client, alice_key):
    add_entities("org:alice:notes", "Ada")
    services.allowance_set(user=alice_key.user, pattern="org:alice:*", permission="read", source="command")

    html = alice_client.get(reverse("namespaces")).content.decode()

    assert "org:alice:notes" in html


def test_namespace_list_filters_by_name_and_pages(alice_client, alice_key):
    for index in range(30):
        add_entities(f"user:alice:project{index:02d}", "Ada")

    first = alice_client.get(reverse("namespaces")).content.decode()
    filtered = alice_client.get(reverse("namespaces"), {"q": "project1"}).content.decode()
    second = alice_client.get(reverse("namespaces"), {"page": "2"}).content.decode()

    assert "user:alice:project00" in first
    assert "user:alice:project29" not in first
    assert 'href="/namespaces/?page=2"' in first
    assert "user:alice:project29" in second
    assert "user:alice:project15" in filtered
    assert "user:alice:project20" not in filtered


def test_a_namespace_i_cannot_read_is_forbidden(alice_client, alice_key, bob_key):
    add_entities(BOB_OWN, "Bobby")

    page = alice_client.get(reverse("namespace", args=[BOB_OWN]))
    entity = alice_client.get(reverse("entity", args=[BOB_OWN, "Bobby"]))

    assert page.status_code == 403
    assert entity.status_code == 403
    assert b"Bobby" not in page.content
    assert b"Bobby" not in entity.content


def test_a_namespace_page_lists_entities_and_searches_them(alice_client, alice_key):
    add_entities(ALICE_OWN, "Ada Lovelace", "Grace Hopper")
    graph.add_observations(
        namespace=ALICE_OWN, observations=[{"entityName": "Grace Hopper", "contents": ["wrote the first compiler"]}]
    )

    everything = alice_client.get(reverse("namespace", args=[ALICE_OWN])).content.decode()
    hits = alice_client.get(reverse("namespace", args=[ALICE_OWN]), {"q": "compiler"}).content.decode()

    assert "Ada Lovelace" in everything
    assert "Grace Hopper" in everything
    assert "Grace Hopper" in hits
    assert "Ada Lovelace" not in hits
    assert "wrote the first compiler" in hits


def test_a_namespace_page_pages_through_entities_with_cursors(alice_client, alice_key):
    add_entities(ALICE_OWN, *[f"entity-{index:03d}" for index in range(60)])

    first = alice_client.get(reverse("namespace", args=[ALICE_OWN])).content.decode()
    next_url = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = alice_client.get(next_url).content.decode()

    assert "entity-049" in first
    assert "entity-050" not in first
    assert "entity-050" in second
    assert "entity-059" in second
    assert 'rel="next"' not in second


def test_a_tampered_cursor_is_a_bad_request(alice_client, alice_key):
    add_entities(ALICE_OWN, "Ada")

    response = alice_client.get(reverse("namespace", args=[ALICE_OWN]), {"after": "garbage"})

    assert response.status_code == 400
    assert b"cursor is not valid" in response.content


def test_an_entity_page_shows_observations_and_relations(alice_client, alice_key):
    add_entities(ALICE_OWN, "Ada", "Charles/Babbage")
    graph.create_relations(
        namespace=ALICE_OWN, relations=[{"from": "Ada", "to": "Charles/Babbage", "relationType": "worked with"}]
    )

    ada = alice_client.get(reverse("entity", args=[ALICE_OWN, "Ada"]))
    babbage = alice_client.get(reverse("entity", args=[ALICE_OWN, "Charles/Babbage"]))
    missing = alice_client.get(reverse("entity", args=[ALICE_OWN, "Nobody"]))

    assert ada.status_code == 200
    assert b"Ada likes tea" in ada.content
    assert b"worked with" in ada.content
    assert b'href="/namespaces/user:alice:default/entities/Charles/Babbage"' in ada.content
    assert babbage.status_code == 200
    assert b'href="/namespaces/user:alice:default/entities/Ada"' in babbage.content
    assert missing.status_code == 404


def test_an_invalid_namespace_name_is_not_found(alice_client, alice_key):
    assert alice_client.get("/namespaces/bad%20name/").status_code == 404


@pytest.mark.parametrize("name", ["50% off? #1", "line\nbreak", "/leading slash", "中文 名字", "a+b=c&d"])
def test_entities_with_any_characters_in_their_names_have_working_links(alice_client, alice_key, name):
    add_entities(ALICE_OWN, name)

    listing = alice_client.get(reverse("namespace", args=[ALICE_OWN]))
    link = re.search(r'<th scope="row"><a href="([^"]+)">', listing.content.decode()).group(1)
    page = alice_client.get(link.replace("&amp;", "&"))

    assert listing.status_code == 200
    assert page.status_code == 200
    assert page.context["entity"]["name"] == name
