from django.apps import AppConfig


class GraphConfig(AppConfig):
    name = "graph"
    verbose_name = "Knowledge graph"

    def ready(self) -> None:
        # Declares the graph operations with the runner (access.operations).
        from graph import operations  # noqa: F401
        from kernel import backups, db_maintenance

        # The kernel's backup check and FTS upkeep know the graph's tables only through these.
        backups.register_tables(
            required=["graph_entity", "graph_observation", "graph_relation", "graph_typedict", "name_fts", "obs_fts"],
            counted={"entities": "graph_entity", "observations": "graph_observation", "relations": "graph_relation"},
        )
        db_maintenance.register_fts_tables("name_fts", "obs_fts")
