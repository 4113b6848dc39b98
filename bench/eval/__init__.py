"""The retrieval evaluation set (memories.jsonl, queries.jsonl) and its sanity checks."""
