"""The operator console (Django admin) for keys, grants, allowances, the audit log and the graph.

Every write the admin makes must go through the services: the tests check the effects only the
services produce (audit events with the operator as actor, trigger-maintained counters, FTS).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from django import forms
from django.contrib.admin import AdminSite
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.middleware import SessionMiddleware
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from access import services
from access.admin import ApiKeyAdmin
from access.authentication import authenticate
from access.exceptions import InvalidGrant, NotAuthenticated
from access.models import ApiKey, AuditEvent, NamespaceAllowance
from access.permissions import Permission
from graph import selectors
from graph import services as graph_services
from graph.models import Entity, Namespace, Observation, Version
from tests.conftest import ALICE, BOB, PASSWORD, Persona, make_persona

SECRET = re.compile(r"mh_[0-9a-f]{8}_[A-Za-z0-9_\-]{43}")
User = get_user_model()


@pytest.fixture
def operator(root_key: Persona, client: Client) -> Client:
    client.force_login(root_key.user)
    return client


# --- helpers -------------------------------------------------------------------------------------------


def form_data(form: forms.BaseForm) -> dict[str, Any]:
    """What a browser would post back for `form` unchanged."""
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        key, value, widget = form.add_prefix(name), form[name].value(), field.widget
        if isinstance(widget, forms.MultiWidget):
            parts = value if isinstance(value, list) else widget.decompress(value)
            for i, part in enumerate(parts):
                data[f"{key}_{i}"] = "" if part is None else part
        elif isinstance(field, forms.BooleanField):
            if value:
                data[key] = "on"
        else:
            data[key] = "" if value is None else value
    return data


def changeform_data(response: Any) -> dict[str, Any]:
    """The POST data of an admin add/change page as rendered: main form, inline management
    forms and every inline row, unchanged."""
    data = form_data(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        data.update(form_data(inline.formset.management_form))
        for form in inline.formset.forms:
            data.update(form_data(form))
    return data


def inline_rows(response: Any, prefix: str) -> list[Any]:
    """The model instances of an inline's existing rows, in page order."""
    for inline in response.context["inline_admin_formsets"]:
        if inline.formset.prefix == prefix:
            return [form.instance for form in inline.formset.initial_forms]
    raise AssertionError(f"no inline {prefix!r}")


def message_texts(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def audit(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def entity(namespace: str, name: str) -> Entity:
    return Entity.objects.get(namespace__name=namespace, name=name)


def found(namespace: str, query: str) -> list[str]:
    return [e["name"] for e in selectors.search_nodes(namespace=namespace, query=query)["entities"]]


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:{name}", args=args)


# --- API keys ------------------------------------------------------------------------------------------


def add_key_data(owner: Persona, **overrides: Any) -> dict[str, Any]:
    data = {
        "owner": owner.user.pk,
        "name": "ci runner",
        "expires_at_0": "",
        "expires_at_1": "",
        "default_namespace": "org:alice:ci",
        "grants-TOTAL_FORMS": "2",
        "grants-INITIAL_FORMS": "0",
        "grants-MIN_NUM_FORMS": "0",
        "grants-MAX_NUM_FORMS": "1000",
        "grants-0-pattern": "org:alice:*",
        "grants-0-permission": "write",
        "grants-1-pattern": "org:shared:docs",
        "grants-1-permission": "read",
    }
    data.update(overrides)
    return data


def test_it_creates_a_key_shows_its_secret_once_and_stores_only_its_hash(operator, alice_key, root_key):
    response = operator.post(url("access_apikey_add"), add_key_data(alice_key), follow=True)

    assert response.status_code == 200
    shown = [SECRET.search(text) for text in message_texts(response)]
    secrets = [match.group(0) for match in shown if match]
    assert len(secrets) == 1
    secret = secrets[0]
    assert "shown only this once" in response.content.decode()

    key = ApiKey.objects.get(name="ci runner")
    assert key.owner == alice_key.user
    assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith(f"mh_{key.prefix}_")
    # The secret is nowhere at rest: not in the key row, the audit log, the admin log or sessions.
    assert secret not in repr(list(ApiKey.objects.values()))
    assert secret not in repr(list(AuditEvent.objects.values()))
    assert secret not in repr(list(LogEntry.objects.values()))
    assert secret not in repr([s.get_decoded() for s in Session.objects.all()])

    access = authenticate(secret)
    assert access.key_id == key.pk
    assert access.default_namespace == "org:alice:ci"
    assert access.permission_for("org:alice:notes") == Permission.WRITE
    assert access.permission_for("org:shared:docs") == Permission.READ

    (created,) = audit("key.created")[-1:]
    assert (created.actor, created.actor_name, created.source, created.key) == (root_key.user, "root", "admin", key)
    assert created.subject == "alice"
    added = [e for e in audit("grant.added") if e.key == key]
    assert sorted((e.detail["pattern"], e.detail["permission"]) for e in added) == [
        ("org:alice:*", "write"),
        ("org:shared:docs", "read"),
    ]
    assert all(e.actor == root_key.user and e.source == "admin" for e in added)

    # Shown once: the next page (the key's own) no longer carries it.
    again = operator.get(url("access_apikey_change", key.pk))
    assert again.status_code == 200
    assert secret not in again.content.decode()
    assert not message_texts(again)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"grants-0-pattern": "org:alice:**"}, "pattern"),
        ({"default_namespace": "has spaces"}, "default_namespace"),
        ({"expires_at_0": "2001-01-01", "expires_at_1": "00:00:00"}, "expires_at"),
        ({"name": "   "}, "name"),
    ],
)
def test_it_refuses_an_invalid_key_with_field_errors_and_creates_nothing(operator, alice_key, overrides, field):
    before = ApiKey.objects.count(), AuditEvent.objects.count()

    response = operator.post(url("access_apikey_add"), add_key_data(alice_key, **overrides))

    assert response.status_code == 200  # the form again, with errors
    form_errors = response.context["adminform"].form.errors
    inline_errors = [e for inline in response.context["inline_admin_formsets"] for e in inline.formset.errors]
    assert field in form_errors or any(field in e for e in inline_errors)
    assert (ApiKey.objects.count(), AuditEvent.objects.count()) == before


def test_it_turns_a_service_refusal_into_an_error_message_and_keeps_nothing(rf, root_key, alice_key):
    class RefusingGrantsAdmin(ApiKeyAdmin):
        # The key is created by the service first; a refusal afterwards must roll it back.
        def save_formset(self, request: Any, form: Any, formset: Any, change: bool) -> None:
            raise InvalidGrant("no grants today")

    model_admin = RefusingGrantsAdmin(ApiKey, AdminSite(name="refusing"))
    request = rf.post("/admin/access/apikey/add/", add_key_data(alice_key, name="doomed"))
    request.user = root_key.user
    request._dont_enforce_csrf_checks = True
    SessionMiddleware(lambda r: None).process_request(request)
    request._messages = FallbackStorage(request)
    keys_before = ApiKey.objects.count()

    response = model_admin.changeform_view(request)

    assert response.status_code == 302
    assert response["Location"] == "/admin/access/apikey/add/"
    assert [str(m) for m in get_messages(request)] == ["Nothing was saved: no grants today"]
    assert ApiKey.objects.count() == keys_before
    assert not AuditEvent.objects.filter(detail__name="doomed").exists()


def test_it_revokes_selected_keys_through_the_service(operator, root_key, alice_key, bob_key):
    data = {"action": "revoke_keys", "_selected_action": [alice_key.key.pk, bob_key.key.pk]}

    response = operator.post(url("access_apikey_changelist"), data, follow=True)

    assert response.status_code == 200
    assert "Revoked 2 keys." in message_texts(response)
    for persona in (alice_key, bob_key):
        persona.key.refresh_from_db()
        assert persona.key.state == "revoked"
        with pytest.raises(NotAuthenticated):
            authenticate(persona.secret)
    revoked = audit("key.revoked")
    assert {e.key for e in revoked} == {alice_key.key, bob_key.key}
    assert all(e.actor == root_key.user and e.source == "admin" for e in revoked)

    again = operator.post(url("access_apikey_changelist"), data, follow=True)
    assert "Revoked 0 keys. 2 were already revoked." in message_texts(again)
    assert len(audit("key.revoked")) == 2


def test_it_filters_keys_by_state(operator, alice_key, bob_key, carol_key):
    services.api_key_revoke(key=bob_key.key, source="test")
    ApiKey.objects.filter(pk=carol_key.key.pk).update(expires_at="2001-01-01T00:00:00Z")

    def listed(state: str) -> set[str]:
        response = operator.get(url("access_apikey_changelist"), {"state": state})
        assert response.status_code == 200
        return {key.owner.username for key in response.context["cl"].result_list}

    assert listed("active") == {"alice", "root"}
    assert listed("revoked") == {"bob"}
    assert listed("expired") == {"carol"}


def test_it_changes_a_key_through_the_service(operator, root_key, alice_key):
    page = operator.get(url("access_apikey_change", alice_key.key.pk))
    data = changeform_data(page)
    data.update(name="renamed", default_namespace="org:alice:other")

    response = operator.post(url("access_apikey_change", alice_key.key.pk), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    alice_key.key.refresh_from_db()
    assert (alice_key.key.name, alice_key.key.default_namespace) == ("renamed", "org:alice:other")
    assert alice_key.key.owner == alice_key.user
    (changed,) = audit("key.changed")
    assert changed.actor == root_key.user
    assert changed.detail == {"name": "renamed", "default_namespace": "org:alice:other"}


def test_it_adds_changes_and_removes_grants_through_the_services(operator, root_key, alice_key):
    key = alice_key.key
    services.grant_set(key=key, pattern="org:team:*", permission="read", source="test")
    page = operator.get(url("access_apikey_change", key.pk))
    rows = {grant.pattern: i for i, grant in enumerate(inline_rows(page, "grants"))}
    data = changeform_data(page)
    extra = len(rows)  # the first empty row
    data[f"grants-{rows['org:alice:*']}-permission"] = "read"  # change
    data[f"grants-{rows['org:team:*']}-DELETE"] = "on"  # remove
    data[f"grants-{extra}-pattern"] = "org:shared:*"  # add
    data[f"grants-{extra}-permission"] = "write"

    response = operator.post(url("access_apikey_change", key.pk), data)

    assert response.status_code == 302
    assert dict(key.grants.values_list("pattern", "permission")) == {"org:alice:*": "read", "org:shared:*": "write"}
    assert [e.detail for e in audit("grant.changed")] == [
        {"pattern": "org:alice:*", "permission": "read", "previous": "write"}
    ]
    assert [e.detail for e in audit("grant.removed") if e.source == "admin"] == [{"pattern": "org:team:*"}]
    assert [e.detail for e in audit("grant.added") if e.source == "admin"] == [
        {"pattern": "org:shared:*", "permission": "write"}
    ]
    assert all(e.actor == root_key.user for e in AuditEvent.objects.filter(source="admin"))
    assert authenticate(alice_key.secret).permission_for(ALICE) == Permission.READ


def test_it_renames_a_grant_pattern_as_remove_then_add(operator, alice_key):
    key = alice_key.key
    page = operator.get(url("access_apikey_change", key.pk))
    data = changeform_data(page)
    data["grants-0-pattern"] = "org:alice:notes"

    assert operator.post(url("access_apikey_change", key.pk), data).status_code == 302

    assert list(key.grants.values_list("pattern", "permission")) == [("org:alice:notes", "write")]
    assert [e.action for e in AuditEvent.objects.filter(source="admin").order_by("id")] == [
        "grant.removed",
        "grant.added",
    ]


def test_it_never_deletes_keys(operator, alice_key):
    assert operator.get(url("access_apikey_delete", alice_key.key.pk)).status_code == 403
    changelist = operator.get(url("access_apikey_changelist"))
    assert "delete_selected" not in dict(changelist.context["action_form"].fields["action"].choices)
    assert ApiKey.objects.filter(pk=alice_key.key.pk).exists()


@pytest.mark.parametrize("page", ["access_apikey_add", "auth_user_add", "graph_entity_add"])
def test_it_renders_the_add_pages(operator, page):
    assert operator.get(url(page)).status_code == 200


# --- users: allowances and keys ---------------------------------------------------------------------


def test_it_manages_allowances_on_the_user_page_through_the_services(operator, root_key, alice_key):
    services.allowance_set(user=alice_key.user, pattern="org:old:*", permission="read", source="test")
    page = operator.get(url("auth_user_change", alice_key.user.pk))
    assert page.status_code == 200
    # Alice's key is listed read-only, linked to its own page.
    assert alice_key.key.prefix in page.content.decode()
    assert url("access_apikey_change", alice_key.key.pk) in page.content.decode()
    data = changeform_data(page)
    data["namespace_allowances-0-DELETE"] = "on"
    data["namespace_allowances-1-pattern"] = "org:team:*"
    data["namespace_allowances-1-permission"] = "write"

    response = operator.post(url("auth_user_change", alice_key.user.pk), data)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert list(NamespaceAllowance.objects.filter(user=alice_key.user).values_list("pattern", "permission")) == [
        ("org:team:*", "write")
    ]
    assert [(e.action, e.actor, e.subject) for e in AuditEvent.objects.filter(source="admin").order_by("id")] == [
        ("allowance.removed", root_key.user, "alice"),
        ("allowance.added", root_key.user, "alice"),
    ]
    # The read-only key inline did not touch the key.
    assert ApiKey.objects.get(pk=alice_key.key.pk).name == alice_key.key.name


def test_it_adds_a_user_in_two_steps_before_allowances(operator):
    page = operator.get(url("auth_user_add"))
    assert page.context["inline_admin_formsets"] == []

    response = operator.post(
        url("auth_user_add"),
        {"username": "dave", "usable_password": "true", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 302
    dave = User.objects.get(username="dave")
    assert response["Location"] == url("auth_user_change", dave.pk)


def test_it_links_each_user_to_their_keys(operator, alice_key):
    response = operator.get(url("auth_user_changelist"))

    assert response.status_code == 200
    assert f"{url('access_apikey_changelist')}?owner__id__exact={alice_key.user.pk}" in response.content.decode()
    keys = operator.get(url("access_apikey_changelist"), {"owner__id__exact": alice_key.user.pk})
    assert [key.pk for key in keys.context["cl"].result_list] == [alice_key.key.pk]


# --- the audit log -----------------------------------------------------------------------------------


def test_it_shows_the_audit_log_read_only(operator, alice_key):
    event = AuditEvent.objects.filter(key=alice_key.key).get()

    assert operator.get(url("access_auditevent_changelist"), {"q": alice_key.key.prefix}).status_code == 200
    assert operator.get(url("access_auditevent_add")).status_code == 403
    assert operator.get(url("access_auditevent_delete", event.pk)).status_code == 403
    detail = operator.get(url("access_auditevent_change", event.pk))
    assert detail.status_code == 200
    assert not detail.context["has_change_permission"]
    assert operator.post(url("access_auditevent_change", event.pk), {"action": "key.revoked"}).status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == "key.created"


# --- sign-in ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "page",
    ["access_apikey_changelist", "auth_user_changelist", "graph_entity_changelist", "graph_namespace_changelist"],
)
def test_it_sends_a_non_staff_user_to_the_admin_login(client, alice_key, page):
    client.force_login(alice_key.user)

    response = client.get(url(page))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


# --- the changelists stay cheap --------------------------------------------------------------------------


def fill(count: int) -> None:
    """`count` of everything each changelist shows: users with keys and grants (and so audit
    events), namespaces with related entities, observations and relations."""
    while Namespace.objects.count() < count:
        i = Namespace.objects.count()
        persona = make_persona(f"user{i}", [(f"org:u{i}:*", "write"), ("org:shared:*", "read")], f"org:u{i}:notes")
        services.allowance_set(user=persona.user, pattern=f"org:u{i}:*", permission="write", source="test")
        graph_services.create_entities(
            namespace=f"org:u{i}:notes",
            entities=[
                {"name": f"e{i}", "entityType": f"type{i % 3}", "observations": [f"fact {i}", "shared fact"]},
                {"name": f"f{i}", "entityType": "thing", "observations": []},
            ],
        )
        graph_services.create_relations(
            namespace=f"org:u{i}:notes", relations=[{"from": f"e{i}", "to": f"f{i}", "relationType": "knows"}]
        )


CHANGELISTS = [
    "access_apikey_changelist",
    "auth_user_changelist",
    "access_auditevent_changelist",
    "graph_namespace_changelist",
    "graph_entity_changelist",
    "graph_relation_changelist",
    "graph_typedict_changelist",
]


@pytest.mark.parametrize("page", CHANGELISTS)
def test_it_renders_changelists_with_queries_independent_of_row_count(operator, django_assert_max_num_queries, page):
    fill(1)
    with CaptureQueriesContext(connection) as few:
        assert operator.get(url(page)).status_code == 200

    fill(30)
    with django_assert_max_num_queries(len(few)):
        response = operator.get(url(page))

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 30


@pytest.mark.parametrize(
    ("page", "params"),
    [
        ("graph_entity_changelist", {"namespace__name": "org:u3:notes"}),
        ("graph_entity_changelist", {"namespace__name": "org:u3:notes", "q": "shared"}),
        ("graph_entity_changelist", {"q": "e1"}),
        ("graph_relation_changelist", {"namespace__name": "org:u3:notes"}),
        ("access_apikey_changelist", {"q": "user1"}),
    ],
)
def test_it_filters_and_searches_with_queries_independent_of_row_count(
    operator, django_assert_max_num_queries, page, params
):
    fill(5)
    with CaptureQueriesContext(connection) as few:
        assert operator.get(url(page), params).status_code == 200

    fill(30)
    with django_assert_max_num_queries(len(few)):
        assert operator.get(url(page), params).status_code == 200


# --- namespaces ----------------------------------------------------------------------------------------


def test_it_lists_namespaces_read_only_with_live_counts(operator, alice, bob):
    graph_services.create_entities(
        namespace=alice,
        entities=[
            {"name": "Ada", "entityType": "person", "observations": ["writes code", "likes tea"]},
            {"name": "Bea", "entityType": "robot", "observations": ["beeps"]},
        ],
    )
    graph_services.create_relations(namespace=alice, relations=[{"from": "Ada", "to": "Bea", "relationType": "owns"}])
    graph_services.create_entities(namespace=bob, entities=[{"name": "Cy", "entityType": "person", "observations": []}])

    response = operator.get(url("graph_namespace_changelist"))

    assert response.status_code == 200
    counts = {
        ns.name: (ns.entity_total, ns.observation_rows - ns.memory_total, ns.relation_total)
        for ns in response.context["cl"].result_list
    }
    assert counts == {ALICE: (2, 3, 1), BOB: (1, 0, 0)}
    stats = selectors.graph_stats(namespace=ALICE)
    assert counts[ALICE] == (stats["entities"], stats["observations"], stats["relations"])
    namespace = Namespace.objects.get(name=ALICE)
    assert operator.get(url("graph_namespace_add")).status_code == 403
    assert operator.get(url("graph_namespace_delete", namespace.pk)).status_code == 403
    assert operator.get(url("graph_namespace_change", namespace.pk)).status_code == 200


# --- entities --------------------------------------------------------------------------------------------


def add_entity_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "namespace_name": ALICE,
        "name": "Ada Lovelace",
        "entity_type": "person",
        "observations-TOTAL_FORMS": "1",
        "observations-INITIAL_FORMS": "0",
        "observations-MIN_NUM_FORMS": "0",
        "observations-MAX_NUM_FORMS": "1000",
        "observations-0-body": "wrote the first published algorithm",
    }
    data.update(overrides)
    return data


def test_it_creates_an_entity_with_observations_through_the_services(operator, alice):
    response = operator.post(url("graph_entity_add"), add_entity_data())

    assert response.status_code == 302
    ada = entity(ALICE, "Ada Lovelace")
    assert (ada.type.name, ada.obs_count, ada.type.count) == ("person", 1, 1)
    assert found(ALICE, "algorithm") == ["Ada Lovelace"]
    assert found(ALICE, "Lovelace") == ["Ada Lovelace"]
    assert selectors.get_entity(namespace=ALICE, name="Ada Lovelace")["observations"] == [
        "wrote the first published algorithm"
    ]


def test_it_creates_the_namespace_of_a_new_entity(operator):
    response = operator.post(url("graph_entity_add"), add_entity_data(namespace_name="org:new:space"))

    assert response.status_code == 302
    assert Namespace.objects.filter(name="org:new:space").exists()
    assert found("org:new:space", "algorithm") == ["Ada Lovelace"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"namespace_name": "not a namespace"}, "namespace_name"),
        ({"name": "Existing"}, "name"),
        ({"entity_type": "  "}, "entity_type"),
    ],
)
def test_it_refuses_an_invalid_entity_with_field_errors(operator, alice, overrides, field):
    graph_services.create_entities(
        namespace=alice, entities=[{"name": "Existing", "entityType": "thing", "observations": []}]
    )

    response = operator.post(url("graph_entity_add"), add_entity_data(**overrides))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert Entity.objects.count() == 1


@pytest.fixture
def ada(alice) -> Entity:
    graph_services.create_entities(
        namespace=alice,
        entities=[
            {"name": "Ada", "entityType": "person", "observations": ["writes code", "likes tea"]},
            {"name": "Bea", "entityType": "robot", "observations": []},
        ],
    )
    graph_services.create_relations(namespace=alice, relations=[{"from": "Bea", "to": "Ada", "relationType": "helps"}])
    return entity(alice, "Ada")


def test_it_renames_an_entity_through_the_service(operator, ada):
    page = operator.get(url("graph_entity_change", ada.pk))
    data = changeform_data(page)
    data["name"] = "Ada King"

    response = operator.post(url("graph_entity_change", ada.pk), data)

    assert response.status_code == 302
    renamed = Entity.objects.get(pk=ada.pk)
    assert (renamed.name, renamed.obs_count, renamed.in_deg) == ("Ada King", 2, 1)
    assert found(ALICE, "King") == ["Ada King"]
    assert found(ALICE, "Ada") == ["Ada King"]
    assert not Entity.objects.filter(name="Ada").exists()


def test_it_refuses_a_rename_onto_an_existing_name(operator, ada):
    data = changeform_data(operator.get(url("graph_entity_change", ada.pk)))
    data["name"] = "Bea"

    response = operator.post(url("graph_entity_change", ada.pk), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"] == ["Entity with name Bea already exists"]
    assert Entity.objects.get(pk=ada.pk).name == "Ada"


def test_it_adds_and_deletes_observations_through_the_services(operator, ada):
    page = operator.get(url("graph_entity_change", ada.pk))
    rows = {obs.body: i for i, obs in enumerate(inline_rows(page, "observations"))}
    data = changeform_data(page)
    data[f"observations-{rows['likes tea']}-DELETE"] = "on"
    data[f"observations-{len(rows)}-body"] = "prefers coffee now"

    response = operator.post(url("graph_entity_change", ada.pk), data)

    assert response.status_code == 302
    assert Entity.objects.get(pk=ada.pk).obs_count == 2
    assert selectors.get_entity(namespace=ALICE, name="Ada")["observations"] == ["writes code", "prefers coffee now"]
    assert found(ALICE, "coffee") == ["Ada"]
    assert found(ALICE, "tea") == []


def test_it_edits_an_observation_in_place_and_its_history_records_the_admin(operator, ada, root_key):
    page = operator.get(url("graph_entity_change", ada.pk))
    rows = inline_rows(page, "observations")
    tea = next(i for i, obs in enumerate(rows) if obs.body == "likes tea")
    data = changeform_data(page)
    data[f"observations-{tea}-body"] = "likes green tea"

    assert operator.post(url("graph_entity_change", ada.pk), data).status_code == 302

    assert selectors.get_entity(namespace=ALICE, name="Ada")["observations"] == ["writes code", "likes green tea"]
    assert Observation.objects.get(pk=rows[tea].pk).body == "likes green tea"  # the same row: same id
    change = Version.objects.filter(kind="observation", object_id=rows[tea].pk).order_by("-version").first()
    assert change is not None
    assert (change.action, change.surface, change.user_id) == ("update", "admin", root_key.user.pk)
    assert change.before is not None
    assert change.after is not None
    assert (change.before["text"], change.after["text"]) == ("likes tea", "likes green tea")
    assert found(ALICE, "green") == ["Ada"]


def test_an_edit_onto_an_existing_text_is_refused_and_changes_nothing(operator, ada):
    page = operator.get(url("graph_entity_change", ada.pk))
    data = changeform_data(page)
    for i, _ in enumerate(inline_rows(page, "observations")):
        data[f"observations-{i}-body"] = "tampered"

    response = operator.post(url("graph_entity_change", ada.pk), data)

    assert response.status_code == 302  # back to the page, with the refusal
    assert any("already has this observation" in text for text in message_texts(response))
    assert selectors.get_entity(namespace=ALICE, name="Ada")["observations"] == ["writes code", "likes tea"]


def test_admin_deletes_are_recorded_and_the_history_is_listed_read_only(operator, ada, root_key):
    page = operator.get(url("graph_entity_change", ada.pk))
    rows = inline_rows(page, "observations")
    tea = next(i for i, obs in enumerate(rows) if obs.body == "likes tea")
    data = changeform_data(page)
    data[f"observations-{tea}-DELETE"] = "on"
    assert operator.post(url("graph_entity_change", ada.pk), data).status_code == 302
    deleted = Version.objects.get(kind="observation", object_id=rows[tea].pk, action="delete")
    assert deleted.before is not None
    assert (deleted.surface, deleted.operation, deleted.before["text"]) == ("admin", "delete_observations", "likes tea")

    listing = operator.get(url("graph_version_changelist"), {"action": "delete", "surface": "admin"})
    assert listing.status_code == 200
    assert [v.pk for v in listing.context["cl"].result_list] == [deleted.pk]
    searched = operator.get(url("graph_version_changelist"), {"q": f"mem_{rows[tea].pk}"})
    assert {v.action for v in searched.context["cl"].result_list} == {"create", "delete"}
    assert operator.get(url("graph_version_change", deleted.pk)).status_code == 200
    assert operator.post(url("graph_version_delete", deleted.pk), {"post": "yes"}).status_code == 403
    assert Version.objects.filter(pk=deleted.pk).exists()


def test_it_shows_at_most_the_newest_fifty_observations(operator, alice):
    bodies = [f"fact number {i}" for i in range(60)]
    graph_services.create_entities(
        namespace=alice, entities=[{"name": "Busy", "entityType": "t", "observations": bodies}]
    )

    page = operator.get(url("graph_entity_change", entity(ALICE, "Busy").pk))

    assert [obs.body for obs in inline_rows(page, "observations")] == bodies[::-1][:50]


def test_it_deletes_an_entity_through_the_service(operator, ada):
    confirm = operator.get(url("graph_entity_delete", ada.pk))
    assert confirm.status_code == 200
    assert "2 observations, 1 relations" in confirm.content.decode()

    response = operator.post(url("graph_entity_delete", ada.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Entity.objects.filter(pk=ada.pk).exists()
    bea = entity(ALICE, "Bea")
    assert (bea.out_deg, bea.in_deg) == (0, 0)  # the relation went with Ada, counters followed
    assert found(ALICE, "tea") == []
    assert selectors.graph_stats(namespace=ALICE)["entities"] == 1


def test_it_bulk_deletes_entities_per_namespace_through_the_service(operator, ada, bob):
    graph_services.create_entities(namespace=bob, entities=[{"name": "Cy", "entityType": "person", "observations": []}])
    keep = entity(ALICE, "Bea")
    chosen = [ada.pk, entity(BOB, "Cy").pk]
    data = {"action": "delete_selected", "_selected_action": chosen}

    confirm = operator.post(url("graph_entity_changelist"), data)
    assert confirm.status_code == 200
    assert "Ada" in confirm.content.decode()
    response = operator.post(url("graph_entity_changelist"), {**data, "post": "yes"})

    assert response.status_code == 302
    assert list(Entity.objects.values_list("pk", flat=True)) == [keep.pk]
    bea = entity(ALICE, "Bea")
    assert (bea.out_deg, bea.in_deg) == (0, 0)
    assert selectors.graph_stats(namespace=BOB)["entities"] == 0


# --- entity list: filter and search ----------------------------------------------------------------------


@pytest.fixture
def two_namespaces(alice, bob) -> None:
    graph_services.create_entities(
        namespace=alice,
        entities=[
            {"name": "Ada", "entityType": "person", "observations": ["maintains the billing service"]},
            {"name": "Adam", "entityType": "person", "observations": []},
            {"name": "Billing", "entityType": "service", "observations": []},
        ],
    )
    graph_services.create_entities(
        namespace=bob, entities=[{"name": "Ada", "entityType": "person", "observations": ["plays chess"]}]
    )


def listed(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 200
    return sorted((e.namespace.name, e.name) for e in response.context["cl"].result_list)


def test_it_filters_entities_by_namespace_name(operator, two_namespaces):
    response = operator.get(url("graph_entity_changelist"), {"namespace__name": BOB})

    assert listed(response) == [(BOB, "Ada")]


def test_it_searches_names_and_observations_with_fts_within_a_namespace(operator, two_namespaces):
    response = operator.get(url("graph_entity_changelist"), {"namespace__name": ALICE, "q": "billing"})

    # "Billing" by name, "Ada" by her observation: found by FTS5, not by the name alone.
    assert listed(response) == [(ALICE, "Ada"), (ALICE, "Billing")]


def test_it_searches_name_prefixes_across_namespaces(operator, two_namespaces):
    response = operator.get(url("graph_entity_changelist"), {"q": "Ada"})

    assert listed(response) == [(ALICE, "Ada"), (ALICE, "Adam"), (BOB, "Ada")]
    # A prefix, not a substring; and case-sensitive, as entity names are.
    assert listed(operator.get(url("graph_entity_changelist"), {"q": "dam"})) == []
    assert listed(operator.get(url("graph_entity_changelist"), {"q": "ada"})) == []


def test_it_reports_a_search_the_store_refuses_as_a_message(operator, two_namespaces, settings):
    settings.MEMORYHUB_LIMITS = {**settings.MEMORYHUB_LIMITS, "MAX_OBSERVATION_BYTES": 10}

    response = operator.get(url("graph_entity_changelist"), {"namespace__name": ALICE, "q": "a much longer query"})

    assert listed(response) == []
    assert any("MAX_OBSERVATION_BYTES" in text for text in message_texts(response))


def test_it_lists_the_relations_of_one_entity(operator, ada):
    response = operator.get(url("graph_relation_changelist"), {"entity": ada.pk})

    assert response.status_code == 200
    assert [(r.from_entity.name, r.to_entity.name) for r in response.context["cl"].result_list] == [("Bea", "Ada")]
    assert operator.get(url("graph_relation_add")).status_code == 403


def test_it_refuses_the_same_pattern_twice_in_one_key(operator, alice_key):
    data = add_key_data(alice_key, **{"grants-1-pattern": "org:alice:*", "grants-1-permission": "read"})

    response = operator.post(url("access_apikey_add"), data)

    assert response.status_code == 200
    (grants,) = [i.formset for i in response.context["inline_admin_formsets"] if i.formset.prefix == "grants"]
    assert grants.non_form_errors()
    assert not ApiKey.objects.filter(name="ci runner").exists()


@pytest.mark.parametrize("value", ["²", "٣", "9" * 30])
def test_the_relation_filter_shows_nothing_for_an_id_that_is_not_a_number(operator, value):
    # `isdigit()` is true of superscripts and other scripts' digits, which int() refuses, and of
    # numbers past SQLite's 64 bits.
    response = operator.get("/admin/graph/relation/", {"entity": value})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 0
