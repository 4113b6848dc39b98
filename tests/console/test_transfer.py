"""The console's import and export (console/transfer.py), through the whole Django stack.

Imports run on the server's import worker thread (graph/import_jobs.py) against the real test
database, so these tests commit (`transactional_db`) and wait for the worker to finish a job.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from access.models import NamespaceAllowance
from access.operations import perform
from access.selectors import user_access
from graph import import_jobs
from graph.models import ImportJob
from memory.services import NewMemory

pytestmark = pytest.mark.django_db(transaction=True)

ALICE_NS = "org:alice:notes"
HOSTILE = ['<script>alert("x")</script>', '"><img src=x onerror=alert(1)>', "javascript:alert(1)"]


def official(*records: dict[str, Any]) -> bytes:
    return "\n".join(json.dumps(record) for record in records).encode()


def entity(name: str, *observations: str, kind: str = "person") -> dict[str, Any]:
    return {"type": "entity", "name": name, "entityType": kind, "observations": list(observations)}


def relation(source: str, target: str, kind: str = "knows") -> dict[str, Any]:
    return {"type": "relation", "from": source, "to": target, "relationType": kind}


SAMPLE = official(
    entity("Ada", "wrote the first program"),
    entity("Babbage", "designed the engine"),
    relation("Ada", "Babbage"),
    relation("Ada", "Nobody"),  # to an entity the file does not define: skipped
)


@pytest.fixture(autouse=True)
def upload_dir(settings: Any, tmp_path: Path) -> Path:
    settings.MEMORYHUB_IMPORT_DIR = tmp_path / "imports"
    return settings.MEMORYHUB_IMPORT_DIR


def person(django_user_model: Any, name: str, *allowances: tuple[str, str], superuser: bool = False) -> AbstractUser:
    user: AbstractUser = django_user_model.objects.create_user(username=name, is_superuser=superuser)
    for pattern, permission in allowances:
        NamespaceAllowance.objects.create(user=user, pattern=pattern, permission=permission)
    return user


@pytest.fixture
def alice(django_user_model: Any) -> AbstractUser:
    return person(django_user_model, "alice", ("org:alice:*", "write"))


@pytest.fixture
def bob(django_user_model: Any) -> AbstractUser:
    return person(django_user_model, "bob", ("org:bob:*", "write"))


@pytest.fixture
def carol(django_user_model: Any) -> AbstractUser:
    return person(django_user_model, "carol", ("org:alice:*", "read"))


def client_of(user: AbstractUser, **options: Any) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def upload(client: Client, content: bytes, namespace: str = ALICE_NS, name: str = "memory.jsonl", **extra: Any) -> Any:
    data = {"new_namespace": namespace, "file": SimpleUploadedFile(name, content), **extra}
    return client.post("/console/transfer/import", data)


def finished(response: Any) -> ImportJob:
    """The job a successful upload redirected to, once the worker is done with it."""
    assert response.status_code == 303, response.content[:500]
    job_id = int(re.fullmatch(r"/console/transfer/imports/(\d+)", response["Location"])[1])  # type: ignore[index]
    assert import_jobs.wait(job_id, timeout=60), "the import worker did not finish"
    return ImportJob.objects.get(pk=job_id)


def names(user: AbstractUser, namespace: str) -> tuple[set[str], set[tuple[str, str, str]]]:
    graph = perform(user_access(user), "read_graph", namespace=namespace)
    return (
        {e["name"] for e in graph["entities"]},
        {(r["from"], r["relationType"], r["to"]) for r in graph["relations"]},
    )


def test_an_upload_is_imported_behind_the_request_and_reported(alice: AbstractUser, upload_dir: Path) -> None:
    client = client_of(alice)
    response = upload(client, SAMPLE)
    job = finished(response)  # Post/Redirect/Get: 303 to the job's page

    assert job.state == ImportJob.State.DONE
    assert job.user_id == alice.pk
    assert job.namespace == ALICE_NS
    assert job.size == len(SAMPLE)
    assert (job.total, job.done) == (4, 4)
    assert job.counts == {
        "entitiesCreated": 2,
        "observationsAdded": 2,
        "relationsCreated": 1,
        "relationsUnchanged": 0,
        "memoriesAdded": 0,
    }
    assert job.skipped_count == 1
    assert job.skipped[0]["relation"]["to"] == "Nobody"
    assert list(upload_dir.iterdir()) == []
    assert job.stored_name == ""
    assert names(alice, ALICE_NS) == ({"Ada", "Babbage"}, {("Ada", "knows", "Babbage")})

    page = client.get(response["Location"])
    text = page.content.decode()
    assert page.status_code == 200
    assert "Uploaded memory.jsonl" in text
    assert "Entities created</dt><dd>2</dd>" in text
    assert "Relations created</dt><dd>1</dd>" in text
    assert "Skipped (1)" in text
    assert "<code>Nobody</code>" in text
    status = client.get(response["Location"] + ".json").json()
    assert status["state"] == "done"
    assert status["active"] is False
    assert (status["done"], status["total"]) == (4, 4)
    listing = client.get("/console/transfer/").content.decode()
    assert f'href="/console/transfer/imports/{job.pk}"' in listing
    assert "state-done" in listing

    # The same file again changes nothing: the relation is already there.
    again = finished(upload(client, SAMPLE))
    assert again.counts["entitiesCreated"] == 0
    assert again.counts["relationsUnchanged"] == 1


def test_the_history_records_the_uploader(alice: AbstractUser) -> None:
    finished(upload(client_of(alice), SAMPLE))
    history = perform(user_access(alice), "entity_history", namespace=ALICE_NS, name="Ada")
    assert "alice" in json.dumps(history)


def test_a_file_that_does_not_parse_fails_with_the_line(alice: AbstractUser, upload_dir: Path) -> None:
    client = client_of(alice)
    bad = official(entity("Ada")) + b"\n{not json\n"
    job = finished(upload(client, bad))
    assert job.state == ImportJob.State.FAILED
    assert job.error.startswith("line 2: not valid JSON")
    page = client.get(f"/console/transfer/imports/{job.pk}").content.decode()
    assert "line 2: not valid JSON" in page
    assert "nothing of it was" in page
    assert names(alice, ALICE_NS) == (set(), set())  # all or nothing
    assert list(upload_dir.iterdir()) == []


def test_an_oversize_file_is_refused_with_a_message(alice: AbstractUser, settings: Any, upload_dir: Path) -> None:
    settings.MEMORYHUB_IMPORT_MAX_BYTES = 1024
    response = upload(client_of(alice), official(entity("Ada", "x" * 2000)))
    assert response.status_code == 413
    assert "The file is larger than the limit of 1.0\xa0KB." in response.content.decode()
    assert 'aria-describedby="import-file-error"' in response.content.decode()
    assert not ImportJob.objects.exists()
    assert not any(upload_dir.glob("*"))


def test_a_request_declaring_an_oversize_body_is_refused_unread(alice: AbstractUser, settings: Any) -> None:
    settings.MEMORYHUB_IMPORT_MAX_BYTES = 1024
    response = client_of(alice).generic(
        "POST",
        "/console/transfer/import",
        b"",
        CONTENT_TYPE="multipart/form-data; boundary=x",
        CONTENT_LENGTH="10000000",
    )
    assert response.status_code == 413
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize("who", ["bob", "carol"])
def test_a_namespace_without_write_grant_is_refused_and_nothing_stored(
    who: str, bob: AbstractUser, carol: AbstractUser, upload_dir: Path
) -> None:
    user = {"bob": bob, "carol": carol}[who]
    response = upload(client_of(user), SAMPLE)
    assert response.status_code == 403
    assert f"You may not write to {ALICE_NS}." in response.content.decode()
    assert not ImportJob.objects.exists()
    assert not any(upload_dir.glob("*"))


def test_the_namespace_select_offers_only_writable_namespaces(alice: AbstractUser, carol: AbstractUser) -> None:
    perform(user_access(alice), "create_entities", namespace=ALICE_NS, entities=[{"name": "A", "entityType": "t"}])
    mine = client_of(alice).get("/console/transfer/").content.decode()
    assert f'<option value="{ALICE_NS}">' in mine
    theirs = client_of(carol).get("/console/transfer/").content.decode()
    assert f'<option value="{ALICE_NS}">' not in theirs  # carol only reads it...
    assert f"/console/namespaces/{ALICE_NS}/export?format=jsonl" in theirs  # ...so she may export it


def test_an_invalid_form_re_renders_with_errors(alice: AbstractUser) -> None:
    response = client_of(alice).post("/console/transfer/import", {"new_namespace": ""})
    text = response.content.decode()
    assert response.status_code == 400
    assert "Choose a namespace, or name a new one." in text
    assert "Choose a file to import." in text
    assert not ImportJob.objects.exists()


def test_the_import_needs_the_csrf_token(alice: AbstractUser) -> None:
    client = client_of(alice, enforce_csrf_checks=True)
    assert upload(client, SAMPLE).status_code == 403
    assert not ImportJob.objects.exists()
    client.get("/console/transfer/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    finished(upload(client, SAMPLE, csrfmiddlewaretoken=token))


def test_the_script_upload_gets_json_and_keeps_the_notice(alice: AbstractUser) -> None:
    client = client_of(alice)
    response = client.post(
        "/console/transfer/import",
        {"new_namespace": ALICE_NS, "file": SimpleUploadedFile("m.jsonl", SAMPLE)},
        headers={"Accept": "application/json"},
    )
    location = response.json()["location"]
    assert import_jobs.wait(int(location.rsplit("/", 1)[1]), timeout=60)
    assert "Uploaded m.jsonl" in client.get(location).content.decode()


def test_a_job_is_its_uploaders(alice: AbstractUser, bob: AbstractUser, django_user_model: Any) -> None:
    job = finished(upload(client_of(alice), SAMPLE))
    for path in (f"/console/transfer/imports/{job.pk}", f"/console/transfer/imports/{job.pk}.json"):
        assert client_of(bob).get(path).status_code == 404
        root = person(django_user_model, f"root{len(path)}", superuser=True)
        assert client_of(root).get(path).status_code == 200
    assert f"/console/transfer/imports/{job.pk}" not in client_of(bob).get("/console/transfer/").content.decode()


def test_hostile_names_are_escaped_in_the_report(alice: AbstractUser) -> None:
    records = [entity(text, text, kind=text) for text in HOSTILE]
    records += [relation(text, "<b>missing</b>", kind=text) for text in HOSTILE]
    client = client_of(alice)
    job = finished(upload(client, official(*records), name="<img src=x onerror=alert(1)>.jsonl"))
    assert job.skipped_count == 3
    text = client.get(f"/console/transfer/imports/{job.pk}").content.decode()
    assert "<script>alert" not in text
    assert "<img src=x" not in text
    assert "<b>missing" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "&lt;b&gt;missing&lt;/b&gt;" in text
    assert 'href="javascript:' not in text


def test_a_job_whose_process_died_reads_as_interrupted(alice: AbstractUser) -> None:
    job = ImportJob.objects.create(user=alice, namespace=ALICE_NS, filename="m.jsonl", state="running")
    cache.delete(f"graph:import-job:{job.pk}")  # nothing publishes its progress: no process runs it
    client = client_of(alice)
    assert client.get(f"/console/transfer/imports/{job.pk}.json").json()["state"] == "interrupted"
    text = client.get(f"/console/transfer/imports/{job.pk}").content.decode()
    assert "Interrupted" in text
    assert "upload the file again" in text


def _seed(alice: AbstractUser) -> None:
    access = user_access(alice)
    perform(
        access,
        "create_entities",
        namespace=ALICE_NS,
        entities=[
            {"name": "Ada", "entityType": "person", "observations": ["wrote the first program"]},
            {"name": "Babbage", "entityType": "person", "observations": []},
        ],
    )
    perform(
        access,
        "create_relations",
        namespace=ALICE_NS,
        relations=[{"from": "Ada", "to": "Babbage", "relationType": "knows"}],
    )
    memories = [
        NewMemory(text="Alice likes green tea", tags=["tea"]),
        NewMemory(text="Alice lived in Leeds", valid_from="2020-01-01T00:00:00Z", valid_to="2021-06-01T00:00:00Z"),
    ]
    perform(access, "memory_write", namespace=ALICE_NS, memories=memories)


def _download(client: Client, namespace: str, fmt: str) -> tuple[Any, str]:
    response = client.get(f"/console/namespaces/{namespace}/export?format={fmt}")
    body = b"".join(response.streaming_content).decode() if response.status_code == 200 else ""  # type: ignore[attr-defined]
    return response, body


@pytest.mark.parametrize(
    ("fmt", "content_type", "filename"),
    [
        ("jsonl", "application/x-ndjson; charset=utf-8", "org_alice_notes.jsonl"),
        ("json", "application/json; charset=utf-8", "org_alice_notes.json"),
        ("mermaid", "text/plain; charset=utf-8", "org_alice_notes.mmd"),
        ("dot", "text/vnd.graphviz; charset=utf-8", "org_alice_notes.dot"),
        ("dump", "application/x-ndjson; charset=utf-8", "org_alice_notes.full.jsonl"),
    ],
)
def test_each_export_format_downloads(alice: AbstractUser, fmt: str, content_type: str, filename: str) -> None:
    _seed(alice)
    response, body = _download(client_of(alice), ALICE_NS, fmt)
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    if fmt == "jsonl":  # the official server's format: entities and relations as they hold now, nothing else
        lines = [json.loads(line) for line in body.split("\n")]
        assert lines == [
            {"type": "entity", "name": "Ada", "entityType": "person", "observations": ["wrote the first program"]},
            {"type": "entity", "name": "Babbage", "entityType": "person", "observations": []},
            {"type": "relation", "from": "Ada", "to": "Babbage", "relationType": "knows"},
        ]
    elif fmt == "dump":
        kinds = [json.loads(line)["type"] for line in body.split("\n")]
        assert kinds == ["entity", "entity", "relation", "memory", "memory"]
        assert '"validTo":"2021-06-01T00:00:00' in body
        assert "Alice likes green tea" in body
    elif fmt == "json":
        document = json.loads(body)
        assert {e["name"] for e in document["entities"]} == {"Ada", "Babbage"}
        assert document["memories"][0]["text"] == "Alice likes green tea"
    elif fmt == "mermaid":
        assert body.startswith("graph LR\n")
        assert '-->|"knows"|' in body
    else:
        assert body.startswith("digraph memory {")
        assert '"Ada" -> "Babbage" [label="knows"]' in body


def test_an_unknown_format_is_a_bad_request(alice: AbstractUser) -> None:
    response = client_of(alice).get(f"/console/namespaces/{ALICE_NS}/export?format=xml")
    assert response.status_code == 400
    assert b"jsonl, json, mermaid, dot, dump" in response.content


def test_export_needs_read_access(alice: AbstractUser, bob: AbstractUser, carol: AbstractUser) -> None:
    _seed(alice)
    refused, _ = _download(client_of(bob), ALICE_NS, "dump")
    assert refused.status_code == 403
    assert b"Alice likes green tea" not in refused.content
    allowed, body = _download(client_of(carol), ALICE_NS, "dump")
    assert allowed.status_code == 200
    assert "Alice likes green tea" in body


def test_the_full_dump_round_trips(alice: AbstractUser) -> None:
    _seed(alice)
    client = client_of(alice)
    _, dump = _download(client, ALICE_NS, "dump")
    job = finished(upload(client, dump.encode(), namespace="org:alice:restored", name="org_alice_notes.full.jsonl"))
    assert job.state == ImportJob.State.DONE, job.error
    assert job.counts["memoriesAdded"] == 2
    assert names(alice, "org:alice:restored") == names(alice, ALICE_NS)
    _, restored = _download(client, "org:alice:restored", "dump")

    def comparable(text: str) -> list[dict[str, Any]]:
        records = [json.loads(line) for line in text.split("\n")]
        for record in records:  # ids of the copy are its own, and so are the open facts' starts (the import)
            record.pop("id", None)
            if record.get("validTo") is None:
                record.pop("validFrom", None)
        return records

    assert comparable(restored) == comparable(dump)


def test_a_big_file_is_imported_in_chunks_that_let_other_writers_in(
    alice: AbstractUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk is its own transaction (graph.services.IMPORT_FILE_CHUNK): relations find the
    entities of earlier chunks, and an error in a later chunk keeps the chunks before it, which
    the page says, and which importing the fixed file again completes."""
    from graph import services

    monkeypatch.setattr(services, "IMPORT_FILE_CHUNK", 2)
    people = [entity(f"P{n}", f"fact {n}") for n in range(5)]
    links = [relation(f"P{n}", f"P{n + 1}") for n in range(4)]
    broken = relation("P0", "P4", kind="x" * 2000)  # over the name limit: refused when its chunk runs
    client = client_of(alice)
    job = finished(upload(client, official(*people, *links, broken)))
    assert job.state == ImportJob.State.FAILED
    assert 0 < job.done < job.total == 10
    entities, _ = names(alice, ALICE_NS)
    assert entities == {f"P{n}" for n in range(5)}  # the entity chunks were committed
    page = client.get(f"/console/transfer/imports/{job.pk}").content.decode()
    assert "which stay imported" in page

    fixed = finished(upload(client, official(*people, *links)))
    assert fixed.state == ImportJob.State.DONE
    assert fixed.counts["entitiesCreated"] == 0
    assert names(alice, ALICE_NS)[1] == {(f"P{n}", "knows", f"P{n + 1}") for n in range(4)}
