"""REST memory API: `/v1/memory/{write,search,delete,clear}` over `vectors.memories`."""
