"""REST memory API: `/v1/memory/{write,search,delete,clear}` and `/v1/memory/banks/*`, an edge
over the memory operations (`access.operations.perform`)."""
