"""Routes of the REST memory API, included by memoryhub/urls.py under `v1/memory/` (no trailing
slash, as in the seed)."""

from django.urls import path

from memory.api import banks, views

urlpatterns = [
    path("write", views.WriteView.as_view(), name="memory-write"),
    path("search", views.SearchView.as_view(), name="memory-search"),
    path("delete", views.DeleteView.as_view(), name="memory-delete"),
    path("clear", views.ClearView.as_view(), name="memory-clear"),
    path("history", views.HistoryView.as_view(), name="memory-history"),
    path("update", views.UpdateView.as_view(), name="memory-update"),
    path("restore", views.RestoreView.as_view(), name="memory-restore"),
    path("supersede", views.SupersedeView.as_view(), name="memory-supersede"),
    path("banks/list", banks.BankListView.as_view(), name="banks-list"),
    path("banks/ping", banks.BankPingView.as_view(), name="banks-ping"),
    path("banks/debug", banks.BankDebugView.as_view(), name="banks-debug"),
]
