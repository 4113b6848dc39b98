"""What the marketplace tells the rest of the server.

`agents_listed_changed`: the set of agents a user holds tokens for changed (a first purchase, or
a call that spent the last token), so the `agent_{id}` tools their MCP connections list changed.
Sent after the transaction commits: a listener that re-lists must see the new balances.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

# kwargs: user_id
agents_listed_changed = Signal()


def agents_listed_changed_on_commit(user_id: int) -> None:
    transaction.on_commit(lambda: agents_listed_changed.send(sender=None, user_id=user_id))
