"""ASGI entry point: `daphne -b 127.0.0.1 -p 8000 memoryhub.asgi:application`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryhub.settings")

# Django must be set up before anything imports models (Channels routing will, later).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from memoryhub.startup import announce  # noqa: E402

announce()

application = ProtocolTypeRouter({"http": django_asgi_app})
