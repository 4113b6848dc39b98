"""/healthz in-process: the database, the in-memory channel layer, and a broker or channel layer
that cannot be reached (503, with the failing check named). With Redis on a live server: see
test_live.py."""

from __future__ import annotations

import socket

from django.db import connection
from django.test import Client


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_healthz_checks_the_database_and_the_in_memory_channel_layer(client: Client, db, settings) -> None:
    settings.CELERY_BROKER_URL = None
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["database"]["durability"] == settings.DURABILITY
    if connection.vendor == "postgresql":
        assert body["database"]["engine"] == "postgresql"
        assert body["database"]["server_version"].split(".")[0].isdigit()
        # MEMORYHUB_DURABILITY as the connection has it (kernel/database.py postgres_database).
        assert body["database"]["synchronous_commit"] == {"sync": "on", "async": "off"}[settings.DURABILITY]
    else:
        assert body["database"]["engine"] == "sqlite"
        assert body["database"]["journal_mode"] == "WAL"
        assert body["database"]["synchronous"] == {"sync": "FULL", "async": "NORMAL"}[settings.DURABILITY]
    assert body["channel_layer"] == {
        "ok": True,
        "backend": "InMemoryChannelLayer",
        "latency_ms": body["channel_layer"]["latency_ms"],
    }
    assert body["broker"] == {"ok": True, "configured": False}


def test_an_unreachable_broker_makes_healthz_fail(client: Client, db, settings) -> None:
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["broker"]["ok"] is False
    assert body["broker"]["configured"] is True
    assert body["broker"]["error"]
    assert body["database"]["ok"] is True
    assert body["channel_layer"]["ok"] is True
    # /healthz is public: the broker URL (which may hold a password) is never echoed.
    assert settings.CELERY_BROKER_URL not in response.content.decode()


def test_an_unreachable_channel_layer_makes_healthz_fail(client: Client, db, settings) -> None:
    settings.CELERY_BROKER_URL = None
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{closed_port()}/0"]},
        }
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["channel_layer"]["ok"] is False
    assert body["channel_layer"]["backend"] == "RedisChannelLayer"
    assert body["channel_layer"]["error"]
    assert body["database"]["ok"] is True
