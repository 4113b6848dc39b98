"""The marketplace operations by name, declared with the runner (access.operations).

They reach the caller's own account (`Reach.ACCOUNT`): a user's wallet, token balances and
ledger. No namespace grant is involved; what the runner checks is that the caller is a user.
"""

from __future__ import annotations

from access.operations import Operation, Reach, declare
from access.permissions import Permission
from agents import selectors, services

LEDGER = "ledger"  # what the writes change, as `operation_applied` announces it

OPERATIONS: dict[str, Operation] = declare(
    [
        Operation("search_agents", selectors.search_agents, Permission.READ, reach=Reach.ACCOUNT),
        Operation("held_agents", selectors.held_agents, Permission.READ, reach=Reach.ACCOUNT),
        Operation("wallet_summary", selectors.wallet_summary, Permission.READ, reach=Reach.ACCOUNT),
        Operation("ledger", selectors.ledger, Permission.READ, reach=Reach.ACCOUNT),
        Operation("buy_agent_tokens", services.buy_tokens, Permission.WRITE, reach=Reach.ACCOUNT, changes=LEDGER),
        Operation("call_agent", services.call_agent, Permission.WRITE, reach=Reach.ACCOUNT, changes=LEDGER),
    ]
)
