"""The marketplace tools' declarations and their naming and language rules, in process."""

from __future__ import annotations

import pytest

from access.permissions import Access
from mcp_endpoint import marketplace, registry
from mcp_endpoint.http import language_of
from mcp_endpoint.registry import ToolContext
from mcp_endpoint.tools import agents as agent_tools
from tests.mcp_endpoint.conftest import AGENT_TOOLS, check_declaration


def test_the_agents_category_declares_search_and_buy_with_the_seeds_names_as_aliases():
    declared = {tool.name: tool for tool in registry.tools(("agents",))}
    assert set(declared) == AGENT_TOOLS
    for tool in declared.values():
        check_declaration(tool)
    assert declared["search_agents"].alias == "search_momo_agents"
    assert declared["search_agents"].describe()["name"] == "search_agents"
    # The marketplace endpoint lists it under the seed's name, and otherwise as declared.
    seed_named = marketplace.PROFILE.describe(declared["search_agents"])
    assert seed_named == {**declared["search_agents"].describe(), "name": "search_momo_agents"}
    assert registry.get("search_momo_agents") is declared["search_agents"]
    # The seed's argument names and types.
    buy = declared["buy_agent_tokens"].input_schema
    assert buy["required"] == ["agent_id", "token_amount"]
    assert buy["properties"]["agent_id"]["type"] == "number"
    assert buy["properties"]["token_amount"]["type"] == "number"
    assert declared["search_agents"].input_schema["required"] == ["query"]


def test_any_agent_id_resolves_under_either_name():
    ctx = ToolContext(Access(grants=()), None)
    for name in ("agent_58", "momo_agent_58"):
        tool = agent_tools.resolve_agent_tool(ctx, name)
        assert tool is not None
        assert (tool.name, tool.alias) == ("agent_58", "momo_agent_58")
        check_declaration(tool)
        assert tool.input_schema["required"] == ["prompt"]
    for name in ("agent_", "agent_0", "agent_x", "momo_agent_-1", "agents_1", "agent_1_"):
        assert agent_tools.resolve_agent_tool(ctx, name) is None


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, None),
        ("", None),
        ("*", None),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("zh", "zh"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR", "en"),  # no French messages: English
    ],
)
def test_accept_language_picks_the_message_language(header, language):
    assert language_of(header) == language


@pytest.mark.parametrize(
    ("language", "endpoint", "text", "chinese"),
    [
        ("zh", "en", "hello", True),  # the header wins over the text
        ("en", "zh", "你好", False),
        (None, "en", "你好", True),  # else the prompt's script
        (None, "zh", "hello", False),
        (None, "zh", "", True),  # else the endpoint's: the seed's Chinese on the marketplace
        (None, "en", "", False),
    ],
)
def test_the_callers_language(language, endpoint, text, chinese):
    ctx = ToolContext(Access(grants=()), None, language, endpoint)
    assert agent_tools.chinese(ctx, text) is chinese
