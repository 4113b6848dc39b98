"""The marketplace tools (category `agents`), as the marketplace seed describes them.

- `search_agents` (marketplace name `search_momo_agents`): published agents matching a query, at
  most 10, with price, base model, tags, and whether and how much the caller holds.
- `buy_agent_tokens`: spend credits on an agent's tokens.
- `agent_{id}` (marketplace name `momo_agent_{id}`): one tool per agent the caller holds tokens
  for (at most 10), listed with name, model, balance and price; calling it spends the tokens the
  agent's provider reports. Any `agent_{id}` can be called, listed or not: without tokens the
  answer is the seed's "no tokens" error, not "unknown tool".

Failures the caller can act on (no tokens, no credits, unknown agent) are `isError` results in
the caller's language: Accept-Language when the client sent one, else the language of the
prompt, else the endpoint's (Chinese on the marketplace endpoint, the seed's language; English
elsewhere).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from pydantic import Field

from access.operations import allowed, perform
from agents import selectors
from agents.exceptions import AgentNotFound, InsufficientCredits, InsufficientTokens
from agents.models import TokenBalance
from kernel.errors import DomainError
from mcp_endpoint.registry import Arguments, DynamicTools, Tool, ToolContext, declare, register_dynamic
from mcp_endpoint.tools.schema import BOOLEAN, INTEGER, NUMBER, STRING, STRINGS, array_schema, object_schema

CATEGORY = "agents"
AGENT_TOOL = re.compile(r"^(?:momo_)?agent_([1-9][0-9]{0,17})$")


# --- language ----------------------------------------------------------------------------------


def _has_cjk(text: str) -> bool:
    return any(unicodedata.east_asian_width(char) in ("W", "F") and char.isalpha() for char in text)


def chinese(ctx: ToolContext, text: str = "") -> bool:
    """Whether to answer this caller in Chinese (see the module docstring)."""
    if ctx.language is not None:
        return ctx.language == "zh"
    if text.strip():
        return _has_cjk(text)
    return ctx.endpoint_language == "zh"


def _localized(ctx: ToolContext, failure: DomainError, text: str = "") -> DomainError:
    """The failure with its message in the caller's language (the seed's wording in Chinese)."""
    zh = chinese(ctx, text)
    details = failure.details
    agent = details.get("agent_id", "?")
    if isinstance(failure, InsufficientTokens):
        if details.get("reason") == "none":
            message = (
                f"错误: 您没有 Agent {agent} 的使用额度。请先使用 buy_agent_tokens 工具购买 token。"
                if zh
                else f"Error: you have no tokens for Agent {agent}. Buy some with the buy_agent_tokens tool first."
            )
        else:
            needed, available = details.get("needed"), details.get("available")
            message = (
                f"错误: Token 余额不足,请先购买额度 (本次调用约需 {needed} tokens, 可用 {available})"
                if zh
                else f"Error: insufficient token balance, buy more tokens first (this call needs about "
                f"{needed} tokens, {available} available)"
            )
    elif isinstance(failure, InsufficientCredits):
        tokens, cost, credits = details.get("tokens"), details.get("cost"), details.get("credits")
        message = (
            f"错误: 积分不足: 购买 Agent {agent} 的 {tokens} tokens 需要 {cost} credits, 您的余额为 {credits} credits"
            if zh
            else f"Error: insufficient credits: {tokens} tokens of Agent {agent} cost {cost} credits and your "
            f"wallet holds {credits}"
        )
    elif isinstance(failure, AgentNotFound):
        message = f"错误: Agent {agent} 不存在或未上架" if zh else f"Error: {failure.message}"
    else:
        return failure
    return _with_message(failure, message)


def _with_message(failure: DomainError, message: str) -> DomainError:
    failure.message = message
    failure.args = (message,)
    return failure


# --- search_agents ---------------------------------------------------------------------------------

AGENT_CARD = object_schema(
    {
        "id": {**INTEGER, "description": "The agent's id: call it as agent_<id> (momo_agent_<id>)"},
        "name": STRING,
        "description": STRING,
        "price": {**NUMBER, "description": "Credits per priceUnit tokens"},
        "priceUnit": {**STRING, "description": "Tokens the price is for: '1000'"},
        "baseModel": STRING,
        "tags": STRINGS,
        "hasPurchased": {**BOOLEAN, "description": "Whether you have ever bought tokens for it"},
        "availableTokens": {**INTEGER, "description": "Your tokens for it, less those held by calls in flight"},
    }
)


class SearchAgentsArguments(Arguments):
    query: str = Field(
        max_length=200,
        description="Words to look for in the agents' names, descriptions, models and tags (empty: list all).",
    )


def search_agents(ctx: ToolContext, args: SearchAgentsArguments) -> dict[str, Any]:
    agents = perform(ctx.access, "search_agents", query=args.query)
    tip = (
        "使用 buy_agent_tokens 工具购买 token 后即可使用智能体"
        if chinese(ctx, args.query)
        else "Buy tokens with the buy_agent_tokens tool, then call the agent's own tool"
    )
    return {"query": args.query, "count": len(agents), "agents": agents, "tip": tip}


declare(
    "search_agents",
    "Search Agents",
    "Search the agent marketplace: published agents whose name, description, model or tags contain the words "
    "of `query`, at most 10, each with its id, price (credits per 1000 tokens), base model, tags and how many "
    "tokens you hold for it. Buy tokens with buy_agent_tokens, then call agent_<id>.",
    SearchAgentsArguments,
    object_schema(
        {
            "query": STRING,
            "count": {**INTEGER, "description": "How many agents are listed"},
            "agents": array_schema(AGENT_CARD),
            "tip": STRING,
        }
    ),
    category=CATEGORY,
    handler=search_agents,
    read_only=True,
    text_indent=1,
    alias="search_momo_agents",
)


# --- buy_agent_tokens --------------------------------------------------------------------------------


class BuyAgentTokensArguments(Arguments):
    # Numbers, as the seed declares them; whole numbers are required and checked by the service.
    agent_id: float = Field(description="The agent's id (from search_agents).")
    token_amount: float = Field(description="How many tokens to buy (a whole number, at least 1).")


def buy_agent_tokens(ctx: ToolContext, args: BuyAgentTokensArguments) -> dict[str, Any]:
    try:
        purchase = perform(ctx.access, "buy_agent_tokens", agent_id=args.agent_id, token_amount=args.token_amount)
    except DomainError as failure:
        raise _localized(ctx, failure) from None
    agent_id = purchase.agent.pk
    message = (
        f"成功为 Agent {agent_id} 购买了 {purchase.tokens} tokens"
        if chinese(ctx)
        else f"Bought {purchase.tokens} tokens for Agent {agent_id}"
    )
    return {
        "message": message,
        "agentId": agent_id,
        "tokens": purchase.tokens,
        "cost": selectors.price_number(purchase.cost),
        "credits": selectors.price_number(purchase.credits_after),
        "availableTokens": purchase.tokens_after,
    }


declare(
    "buy_agent_tokens",
    "Buy Agent Tokens",
    "Buy tokens for an agent with your credits: cost = token_amount / 1000 times the agent's price. Fails, changing "
    "nothing, when your credits do not cover it. The agent's tool (agent_<id>) then appears in tools/list.",
    BuyAgentTokensArguments,
    object_schema(
        {
            "message": STRING,
            "agentId": INTEGER,
            "tokens": {**INTEGER, "description": "Tokens bought"},
            "cost": {**NUMBER, "description": "Credits spent"},
            "credits": {**NUMBER, "description": "Credits left in your wallet"},
            "availableTokens": {**INTEGER, "description": "Your token balance for the agent now"},
        }
    ),
    category=CATEGORY,
    handler=buy_agent_tokens,
    render_text=lambda value: value["message"],
)


# --- agent_{id} ---------------------------------------------------------------------------------------

AGENT_ANSWER = object_schema(
    {
        "agentId": INTEGER,
        "response": {**STRING, "description": "The agent's answer"},
        "model": STRING,
        "tokensUsed": {**INTEGER, "description": "Tokens this call spent"},
        "availableTokens": {**INTEGER, "description": "Your token balance for the agent now"},
    }
)


class AgentPromptArguments(Arguments):
    prompt: str = Field(description="The instruction or question for the agent (发送给智能体的指令或问题).")


def _caller_of(agent_id: int) -> Any:
    def call(ctx: ToolContext, args: AgentPromptArguments) -> dict[str, Any]:
        try:
            answer = perform(ctx.access, "call_agent", agent_id=agent_id, prompt=args.prompt)
        except DomainError as failure:
            raise _localized(ctx, failure, args.prompt) from None
        return {
            "agentId": agent_id,
            "response": answer.text,
            "model": answer.model,
            "tokensUsed": answer.tokens_used,
            "availableTokens": answer.tokens_left,
        }

    return call


def agent_tool(agent_id: int, description: str) -> Tool:
    return Tool(
        name=f"agent_{agent_id}",
        alias=f"momo_agent_{agent_id}",
        title=f"Agent {agent_id}",
        description=description,
        category=CATEGORY,
        arguments=AgentPromptArguments,
        output_schema=AGENT_ANSWER,
        handler=_caller_of(agent_id),
        render_text=lambda value: value["response"],
    )


def _describe(ctx: ToolContext, balance: TokenBalance) -> str:
    agent = balance.agent
    model = agent.base_model or "default model"
    price = selectors.price_number(agent.price_per_1k)
    if chinese(ctx):
        return (
            f"{agent.name} ({model}) | 余额: {balance.tokens} tokens | 价格: {price} credits / 1000 tokens | "
            f"{agent.description}"
        )
    return (
        f"{agent.name} ({model}) | balance: {balance.tokens} tokens | price: {price} credits / 1000 tokens | "
        f"{agent.description}"
    )


def list_agent_tools(ctx: ToolContext) -> list[Tool]:
    if not allowed(ctx.access, "held_agents"):
        return []  # a keyless local session holds no tokens
    return [agent_tool(balance.agent_id, _describe(ctx, balance)) for balance in perform(ctx.access, "held_agents")]


def resolve_agent_tool(ctx: ToolContext, name: str) -> Tool | None:
    match = AGENT_TOOL.match(name)
    if match is None:
        return None
    return agent_tool(int(match.group(1)), f"Call Agent {match.group(1)}")


register_dynamic(DynamicTools(category=CATEGORY, list=list_agent_tools, resolve=resolve_agent_tool))
