"""Console area: transfer (being built)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path


@login_required
def transfer(request: HttpRequest) -> HttpResponse:
    return render(request, "console/base.html", {"section": "console", "area": "transfer"})


urlpatterns: list[URLPattern] = [path("transfer/", transfer, name="transfer")]
