"""`/v1/memory/banks/*` of the REST memory API: which banks (the REST API's word for namespaces)
a key can use."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access import selectors
from access.permissions import Access
from kernel.api_schema import ERROR_RESPONSES


def _timestamp() -> str:
    return timezone.now().isoformat(timespec="seconds").replace("+00:00", "Z")


class BankListView(APIView):
    @extend_schema(
        operation_id="banks_list",
        tags=["memory"],
        summary="List the memory banks (namespaces) this key can read.",
        responses={200: serializers.ListSerializer(child=serializers.CharField()), 401: ERROR_RESPONSES[401]},
    )
    def get(self, request: Request) -> Response:
        assert isinstance(request.auth, Access)
        return Response(selectors.usable_namespaces(request.auth))


class BankPingView(APIView):
    @extend_schema(
        operation_id="banks_ping",
        tags=["memory"],
        summary="Health check of the banks service.",
        responses={
            200: inline_serializer(
                "BanksPing",
                {"ok": serializers.BooleanField(), "ts": serializers.CharField(), "area": serializers.CharField()},
            ),
            401: ERROR_RESPONSES[401],
        },
    )
    def get(self, request: Request) -> Response:
        return Response({"ok": True, "ts": _timestamp(), "area": "banks"})


class BankDebugView(APIView):
    """Development only: answers 404 unless DEBUG is on, and needs no key."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        if not settings.DEBUG:
            raise Http404
        return Response(
            {
                "ok": True,
                "ts": _timestamp(),
                "env": "Development",
                "mcpEnabled": True,
                "mcpBase": request.build_absolute_uri("/mcp"),
                "expectedRoutes": [
                    "/v1/memory/banks/ping",
                    "/v1/memory/banks/list (GET)",
                    "/v1/memory/banks/debug",
                    "/v1/graph/<operation> (POST)",
                    "/openapi.json",
                    "/docs",
                ],
            }
        )
