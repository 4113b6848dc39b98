"""The self-service web pages (an edge): sign-in, "My keys", and namespace browsing.

A plain package, not an app: the pages render the templates in templates/access/ and run every
graph read through graph.operations with the signed-in user's access, like the other edges.
"""
