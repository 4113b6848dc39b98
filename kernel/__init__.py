"""The kernel: errors, env helpers, SQLite/database helpers, the HTTP client, the metrics registry,
health, logging, and the maintenance framework. The lowest layer: it imports no app of this project."""
