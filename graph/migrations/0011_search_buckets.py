"""PostgreSQL: each entity and observation also carries the bucket of ids it belongs to
(`b<id / 4096>`) as a one-lexeme tsvector, indexed in the same GIN index as its words.

A search ranks the newest matches of its words (MEMORYHUB_SEARCH_RANK_WINDOW). A GIN index
returns matches in no order, so for a word in a few percent of the rows PostgreSQL either reads
every match and sorts them or walks the newest rows until the window is full (50,000 rows for
1,000 matches at 2 %). With the bucket in the index, "this word, in the newest buckets" is an
intersection of posting lists inside the index, and only those rows are read (graph/recent.py
chooses when; bench/RESULTS.md has the figures).

Each two-column index replaces the one over `search_vector` alone: a GIN index over several
columns serves a query on any of them as well as a single-column one would, and one index
costs a write less than two. SQLite needs nothing: FTS5 reads a word's rows newest first.
"""

from django.db import migrations

from kernel.migration_tools import on_postgresql

# The id is assigned before generated columns are computed, so a new row's bucket is known when
# it is written.
BUCKET = "tsvector GENERATED ALWAYS AS (array_to_tsvector(ARRAY['b' || (id >> 12)::text])) STORED"

FORWARD = [
    statement
    for table in ("graph_entity", "graph_observation")
    for statement in (
        f"ALTER TABLE {table} ADD COLUMN search_bucket {BUCKET}",
        f"CREATE INDEX {table}_search_recent ON {table} USING gin (search_vector, search_bucket)",
        f"DROP INDEX {table}_search_vector",
    )
]
BACKWARD = [
    statement
    for table in ("graph_entity", "graph_observation")
    for statement in (
        f"CREATE INDEX {table}_search_vector ON {table} USING gin (search_vector)",
        f"DROP INDEX {table}_search_recent",
        f"ALTER TABLE {table} DROP COLUMN search_bucket",
    )
]


class Migration(migrations.Migration):
    dependencies = [("graph", "0010_import_jobs")]

    operations = [on_postgresql(migrations.RunSQL(FORWARD, BACKWARD))]
