"""Swagger UI for `/product/docs`, served from this server like `/docs`.

django-ninja's default renderer loads Swagger UI from a CDN unless `ninja` is an installed app,
so the page was blank without internet. This one uses the copy drf-spectacular-sidecar vendors
(already installed for `/docs`) and starts it from a static file, not an inline script.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from ninja.openapi.docs import Swagger

if TYPE_CHECKING:
    from ninja import NinjaAPI


class LocalSwagger(Swagger):
    template = "compat/swagger.html"

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        settings = {**self.settings, "url": self.get_openapi_url(api, kwargs)}
        return render(request, self.template, {"api": api, "swagger_settings": settings})
