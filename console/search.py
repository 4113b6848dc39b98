"""Console area: search (being built)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path


@login_required
def search(request: HttpRequest) -> HttpResponse:
    return render(request, "console/base.html", {"section": "console", "area": "search"})


urlpatterns: list[URLPattern] = [path("search", search, name="search")]
