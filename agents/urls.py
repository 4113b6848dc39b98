"""The marketplace's self-service page: the signed-in user's wallet (see views.py)."""

from django.urls import path

from agents import views

urlpatterns = [
    path("wallet/", views.wallet, name="wallet"),
]
