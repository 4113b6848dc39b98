"""The marketplace's self-service page: a user's own wallet, token balances and ledger.

Read-only and thin: everything comes from the marketplace's account operations, run for the
signed-in user (`access.operations.perform`), so the page can only ever show the user's own money. Credits are granted by operators in the admin
and spent through the MCP tools (`buy_agent_tokens`, `momo_agent_<id>`); nothing is written here.
Private to the user, so never cached.
"""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from access.operations import perform
from access.selectors import user_access

LEDGER_PER_PAGE = 50


@never_cache
@login_required
@require_safe
def wallet(request: HttpRequest) -> HttpResponse:
    """The user's credits, a token balance per agent, and their ledger, newest first, 50 a page
    (`?page=N`; an invalid or out-of-range page shows the nearest one)."""
    user = request.user
    assert isinstance(user, AbstractBaseUser), "login_required runs first"
    caller = user_access(user)
    summary = perform(caller, "wallet_summary")
    page = Paginator(perform(caller, "ledger"), LEDGER_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "section": "wallet",
        "credits": summary.credits,
        "balances": summary.balances,
        "page": page,
        "entries": page.object_list,
        "previous_url": f"{request.path}?page={page.previous_page_number()}" if page.has_previous() else None,
        "next_url": f"{request.path}?page={page.next_page_number()}" if page.has_next() else None,
    }
    return render(request, "agents/wallet.html", context)
