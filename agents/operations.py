"""The marketplace operations by name, declared with the runner (access.operations).

Most reach the caller's own account (`Reach.ACCOUNT`): a user's wallet, token balances and
ledger; no namespace grant is involved, and what the runner checks is that the caller is a user.
Granting credits to users and publishing agents are operators' (`Reach.DATABASE`): the admin
runs them with the staff member's operator access.
"""

from __future__ import annotations

from access.operations import Operation, Reach, declare
from access.permissions import Permission
from agents import selectors, services

# What the writes change, as `operation_applied` announces it.
LEDGER = "ledger"
CATALOGUE = "agents"

OPERATIONS: dict[str, Operation] = declare(
    [
        Operation("search_agents", selectors.search_agents, Permission.READ, reach=Reach.ACCOUNT),
        Operation("held_agents", selectors.held_agents, Permission.READ, reach=Reach.ACCOUNT),
        Operation("wallet_summary", selectors.wallet_summary, Permission.READ, reach=Reach.ACCOUNT),
        Operation("ledger", selectors.ledger, Permission.READ, reach=Reach.ACCOUNT),
        Operation("buy_agent_tokens", services.buy_tokens, Permission.WRITE, reach=Reach.ACCOUNT, changes=LEDGER),
        Operation("call_agent", services.call_agent, Permission.WRITE, reach=Reach.ACCOUNT, changes=LEDGER),
        Operation("grant_credits", services.grant_credits, Permission.WRITE, reach=Reach.DATABASE, changes=LEDGER),
        Operation("publish_agents", services.publish_agents, Permission.WRITE, reach=Reach.DATABASE, changes=CATALOGUE),
        Operation(
            "unpublish_agents", services.unpublish_agents, Permission.WRITE, reach=Reach.DATABASE, changes=CATALOGUE
        ),
    ]
)
