"""MemOS' Coze integration guide (seed 000, "直接使用REST API"), run against a live server: its
add_memory handler and its chat handler, verbatim except for the URL and an added API-key header,
over real HTTP with `requests`.

The guide's chat handler posts `json=json.dumps({...})`, a JSON string holding the object; the
server must accept that. (Its search handler is not run: as published it is not valid Python,
`json.dumps{`.)"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from tests.conftest import ALICE, make_persona

pytestmark = pytest.mark.django_db(transaction=True)

SOFIA = "My daughter Sofia is allergic to peanuts, so we never buy satay sauce."


def args(**fields: Any) -> Any:
    """Coze's `Args[Input]`: the handler reads `args.input.<field>`."""
    return SimpleNamespace(input=SimpleNamespace(**fields))


def test_the_guides_add_and_chat_handlers_work_unchanged(live_server: Any) -> None:
    persona = make_persona("alice", [("org:alice:*", "write")], ALICE)
    base = live_server.url
    key = persona.secret

    # --- verbatim from the guide, but for the URL and the X-API-Key header -----------------------
    def handler(args):
        memory_content = args.input.memory_content
        user_id = args.input.user_id
        cube_id = args.input.cube_id

        # 调用Server API的add接口
        url = f"{base}/product/add"
        payload = json.dumps({
            "user_id": user_id,
            "messages": memory_content,  # 支持字符串或消息数组
            "writable_cube_ids": [cube_id] if cube_id else None
        })  # fmt: skip
        headers = {
            'Content-Type': 'application/json',
            'X-API-Key': key,
        }  # fmt: skip

        response = requests.post(url, headers=headers, data=payload, timeout=30)
        response.raise_for_status()

        return response.json()

    def chat_handler(args):
        url = f"{base}/product/chat/complete"
        payload = json.dumps({
            "user_id": args.input.user_id,
            "query": args.input.query
        })  # fmt: skip
        response = requests.post(url, json=payload, timeout=30, headers={"X-API-Key": key})
        return response.json()

    # -----------------------------------------------------------------------------------------------

    added = handler(args(memory_content=SOFIA, user_id="coze-user", cube_id=None))
    assert added["code"] == 200
    assert added["message"] == "Memory added successfully"
    assert [(item["memory"], item["cube_id"]) for item in added["data"]] == [(SOFIA, ALICE)]
    travel = handler(args(memory_content="We fly to Tokyo in March.", user_id="coze-user", cube_id="org:alice:trips"))
    assert travel["data"][0]["cube_id"] == "org:alice:trips"

    answer = chat_handler(args(user_id="coze-user", query="What is my daughter allergic to?"))
    assert answer["code"] == 200
    # No language model on this test server: the answer lists the memories, and is not recorded.
    assert answer["message"].startswith("Chat completed successfully; the exchange was not recorded")
    assert f"- {SOFIA}" in answer["data"]["response"]
    assert answer["data"]["reasoning"] == ""
    # One key, many users: another user of the bot is not told the first one's memories.
    other = chat_handler(args(user_id="coze-user-2", query="What is my daughter allergic to?"))
    assert other["code"] == 200
    assert SOFIA not in other["data"]["response"]

    # A cube the key cannot write: raise_for_status raises, and the body is the envelope.
    with pytest.raises(requests.HTTPError) as refused:
        handler(args(memory_content="x", user_id="coze-user", cube_id="org:bob:notes"))
    assert refused.value.response.status_code == 403
    assert refused.value.response.json() == {
        "code": 403,
        "message": "This API key has no write grant for namespace 'org:bob:notes'.",
        "data": None,
    }
