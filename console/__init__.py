"""The memory console (an edge, beside the self-service pages in web/): what agents remember, seen,
searched and corrected in the browser at /console/.

A plain package, not an app. Every page reads and writes through `access.operations.perform` with
the signed-in user's access (`common.console_access`): the same runner and grant checks as every
other surface, so a page never shows or changes more than a key of that user could. The pages
render templates/console/, their scripts and styles are in static/console/ (third-party code
vendored in static/vendor/, see `make vendor-static`).

Modules, one per area, each with its own `urlpatterns` (collected by console/urls.py):
- dashboard: /console/ (namespaces, growth, recent writes, backlog, usage per key)
- live: the Channels consumer streaming recent writes to the dashboard (/console/live)
- search: /console/search, /console/namespaces/<ns>/memories
- memories: /console/memories/<id> and its corrections (edit, supersede, restore, delete)
- graphview: /console/namespaces/<ns>/graph, its JSON, and entity pages
- transfer: import (upload with progress) and export downloads
"""
