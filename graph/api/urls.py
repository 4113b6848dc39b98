from django.urls import path

from graph.api.views import VIEWS

app_name = "graph-api"
urlpatterns = [path(name, view.as_view(), name=name) for name, view in VIEWS.items()]
