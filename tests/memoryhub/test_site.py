"""Site-wide details: the favicon and the admin's branding."""

from __future__ import annotations

from django.test import Client

from tests.conftest import Persona


def test_favicon_ico_is_an_icon(client: Client, db) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert response.getvalue().startswith(b"\x00\x00\x01\x00")  # the ICO header
    assert "max-age" in response["Cache-Control"]


def test_every_page_links_the_icon(client: Client, alice_key: Persona) -> None:
    assert client.get("/static/memoryhub/favicon.svg").status_code == 200
    for page in ("/accounts/login/", "/product/docs"):
        assert 'rel="icon" href="/static/memoryhub/favicon.svg"' in client.get(page).content.decode()
    client.force_login(alice_key.user)
    assert 'rel="icon" href="/static/memoryhub/favicon.svg"' in client.get("/keys/").content.decode()


def test_the_admin_is_branded_memoryhub(client: Client, root_key: Persona) -> None:
    login = client.get("/admin/login/").content.decode()
    assert '<div id="site-name"><a href="/admin/">MemoryHub</a></div>' in login
    assert "Django administration" not in login
    client.force_login(root_key.user)
    index = client.get("/admin/").content.decode()
    assert "<title>Site administration | MemoryHub</title>" in index
    assert "Django administration" not in index
    # The admin links to the memory console (templates/admin/base_site.html).
    assert '<a href="/console/">Console</a>' in index
