"""Where the graph asks whether a new observation repeats one its entity already has.

The graph stores exact repeats once (the official server's rule). Whether two different texts
say the same thing is decided above it (memory/dedupe.py, which can compare meanings with the
vectors app's embedder): that layer registers a judge here at start-up. With no judge (or with
dedupe off for the namespace or the call) only exact repeats are caught.

A repeat is not stored; the observation it repeats is "mentioned" instead: its mention count and
last-seen time rise and its history records the mention (`note_mentions`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

from access import namespaces
from graph import history
from graph.sql import db, now
from graph.write_sql import POSTGRES

# (namespace id, new texts, the current texts they are compared with as [(id, text)]) ->
# {index in new texts: id of the current text it repeats}.
Judge = Callable[[int, Sequence[str], Sequence[tuple[int, str]]], Mapping[int, int]]

_judge: Judge | None = None


def register_judge(judge: Judge) -> None:
    global _judge
    _judge = judge


def enabled(namespace_id: int, requested: bool | None = True) -> bool:
    """Whether repeats are looked for in this namespace for this call (the namespace's setting,
    and the call's `dedupe` flag; None, an optional argument given as null, is the default: on)."""
    return requested is not False and namespaces.dedupe_enabled(namespace_id)


def find_repeats(namespace_id: int, texts: Sequence[str], current: Sequence[tuple[int, str]]) -> dict[int, int]:
    """{index in `texts`: id in `current` it repeats}: exact repeats always, repeats in other
    words when a judge is registered."""
    if not texts or not current:
        return {}
    by_text = {body: ident for ident, body in current}
    found = {index: by_text[text] for index, text in enumerate(texts) if text in by_text}
    if _judge is not None:
        rest = [index for index in range(len(texts)) if index not in found]
        if rest:
            judged = _judge(namespace_id, [texts[index] for index in rest], current)
            found.update((rest[position], ident) for position, ident in judged.items())
    return found


# Raise each observation's count by its times in the JSON object ?1 ({"id": times}).
if POSTGRES:
    _MENTION = (
        "UPDATE graph_observation SET mention_count = mention_count + (SELECT CAST(value AS integer) "
        "FROM jsonb_each_text(CAST(?1 AS jsonb)) WHERE key = CAST(graph_observation.id AS TEXT)), last_seen_at = ?2 "
        "WHERE id IN (SELECT CAST(key AS bigint) FROM jsonb_each_text(CAST(?1 AS jsonb))) "
        "RETURNING id, entity_id, actor_id, mention_count"
    )
else:
    _MENTION = (
        "UPDATE graph_observation SET mention_count = mention_count + (SELECT value FROM json_each(?1) "
        "WHERE key = CAST(graph_observation.id AS TEXT)), last_seen_at = ?2 "
        "WHERE id IN (SELECT CAST(key AS INTEGER) FROM json_each(?1)) "
        "RETURNING id, entity_id, actor_id, mention_count"
    )


def note_mentions(namespace_id: int, mentions: Mapping[int, int]) -> None:
    """Raise the mention count and last-seen time of observations written again ({id: times}),
    and record each mention in their history."""
    if not mentions:
        return
    stamp = now()
    rows = (
        db().execute(_MENTION, (json.dumps({str(ident): times for ident, times in mentions.items()}), stamp)).fetchall()
    )
    history.record(
        history.OBSERVATION,
        "mention",
        [
            {
                "object_id": ident,
                "namespace_id": namespace_id,
                "entity_id": entity,
                "before": {"mentionCount": count - mentions[ident]},
                "after": {"mentionCount": count, "lastSeen": stamp},
                "actor_id": actor,
            }
            for ident, entity, actor, count in rows
        ],
        at=stamp,
    )
