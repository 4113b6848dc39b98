"""Graph traversal over the relation table's covering indexes.

Each BFS level is one or two indexed queries over the whole frontier (not one query per node):
`(from_id, to_id, type_id)` serves outgoing steps and `(to_id, from_id, type_id)` incoming ones,
both index-only because SQLite indexes end with the rowid (the relation id).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from graph.exceptions import InvalidArgument
from graph.sql import as_json, db, in_json, truth
from graph.validity import CURRENT, When, condition


class Direction(Enum):
    OUT = "out"
    IN = "in"
    BOTH = "both"

    @classmethod
    def parse(cls, value: object) -> Direction:
        if value is None:
            return cls.BOTH
        aliases = {"out": cls.OUT, "outgoing": cls.OUT, "in": cls.IN, "incoming": cls.IN, "both": cls.BOTH}
        if isinstance(value, str) and value.lower() in aliases:
            return aliases[value.lower()]
        raise InvalidArgument(f"direction must be one of 'out', 'in', 'both' (got {value!r})")

    def reverse(self) -> Direction:
        return {Direction.OUT: Direction.IN, Direction.IN: Direction.OUT, Direction.BOTH: Direction.BOTH}[self]


# (node, neighbour, relation id) for each edge leaving the frontier in the given direction.
Step = tuple[int, int, int]


def steps(
    frontier: Iterable[int], direction: Direction, relation_type: int | None = None, moment: When = CURRENT
) -> list[Step]:
    """The edges leaving the frontier that hold at the time `moment` looks at (default: now)."""
    nodes = as_json(frontier)
    conn = db()
    if moment.current:
        # Now: the open edges. `valid_to IS NULL` lets SQLite walk the partial index
        # relation_current_edge (from, to, type) index-only, as the walk did before validity;
        # the full condition reads each edge's row (find_path was ~1.5x slower with it). An edge
        # only gets a later start or a future end from an import (graph/services.import_graph).
        valid, valid_params = "valid_to IS NULL", list[object]()
    else:
        valid, valid_params = condition("graph_relation", moment)
        valid = truth(valid)
    type_clause = (" AND type_id = ?" if relation_type is not None else "") + f" AND {valid}"
    extra: tuple[object, ...] = ((relation_type,) if relation_type is not None else ()) + tuple(valid_params)
    outgoing = f"SELECT from_id, to_id, id FROM graph_relation WHERE from_id {in_json()}{type_clause}"
    incoming = f"SELECT to_id, from_id, id FROM graph_relation WHERE to_id {in_json()}{type_clause}"
    if direction is Direction.OUT:
        return conn.execute(outgoing, (nodes, *extra)).fetchall()
    if direction is Direction.IN:
        return conn.execute(incoming, (nodes, *extra)).fetchall()
    # Both ways in one statement (a round trip less on PostgreSQL), outgoing edges first.
    rows: list[Step] = conn.execute(f"{outgoing} UNION ALL {incoming}", (nodes, *extra, nodes, *extra)).fetchall()
    return rows


def bfs(
    start: int,
    *,
    direction: Direction,
    max_depth: int,
    relation_type: int | None = None,
    max_nodes: int,
    moment: When = CURRENT,
) -> tuple[dict[int, int], list[int], bool]:
    """Breadth-first search from `start`.

    Returns (distance of each reached node, relation ids walked, truncated). Stops early, with
    truncated=True, once `max_nodes` nodes besides the start have been reached."""
    distance = {start: 0}
    walked: list[int] = []
    frontier = [start]
    for depth in range(1, max_depth + 1):
        if not frontier:
            break
        next_frontier: list[int] = []
        for _node, neighbour, relation in steps(frontier, direction, relation_type, moment):
            walked.append(relation)
            if neighbour not in distance:
                if len(distance) > max_nodes:
                    return distance, walked, True
                distance[neighbour] = depth
                next_frontier.append(neighbour)
        frontier = next_frontier
    return distance, list(dict.fromkeys(walked)), False


def shortest_path(
    source: int, target: int, *, direction: Direction, max_depth: int, moment: When = CURRENT
) -> tuple[list[int], list[int]] | None:
    """Bidirectional BFS. Returns (node ids, relation ids) of one shortest path, or None.

    The side with the smaller frontier expands each round, which keeps the work near
    2·b^(d/2) instead of b^d on bushy graphs."""
    if source == target:
        return [source], []
    # parent[node] = (previous node towards that side's origin, relation id)
    forward: dict[int, tuple[int, int] | None] = {source: None}
    backward: dict[int, tuple[int, int] | None] = {target: None}
    forward_frontier, backward_frontier = [source], [target]
    hops = 0
    while forward_frontier and backward_frontier and hops < max_depth:
        hops += 1
        expand_forward = len(forward_frontier) <= len(backward_frontier)
        parents, others = (forward, backward) if expand_forward else (backward, forward)
        frontier = forward_frontier if expand_forward else backward_frontier
        step_direction = direction if expand_forward else direction.reverse()
        next_frontier: list[int] = []
        meeting: int | None = None
        for node, neighbour, relation in steps(frontier, step_direction, moment=moment):
            if neighbour in parents:
                continue
            parents[neighbour] = (node, relation)
            next_frontier.append(neighbour)
            if neighbour in others:
                meeting = neighbour
                break
        if meeting is not None:
            return _join(meeting, forward, backward)
        if expand_forward:
            forward_frontier = next_frontier
        else:
            backward_frontier = next_frontier
    return None


def _join(
    meeting: int, forward: dict[int, tuple[int, int] | None], backward: dict[int, tuple[int, int] | None]
) -> tuple[list[int], list[int]]:
    nodes: list[int] = [meeting]
    relations: list[int] = []
    node = meeting
    while (link := forward[node]) is not None:
        node, relation = link
        nodes.insert(0, node)
        relations.insert(0, relation)
    node = meeting
    while (link := backward[node]) is not None:
        node, relation = link
        nodes.append(node)
        relations.append(relation)
    return nodes, relations


def all_simple_paths(
    source: int,
    target: int,
    *,
    direction: Direction,
    max_depth: int,
    max_paths: int,
    max_expansions: int = 20000,
    moment: When = CURRENT,
) -> tuple[list[tuple[list[int], list[int]]], bool]:
    """Simple paths (no repeated node) of at most `max_depth` hops, shortest first.

    Breadth-first over partial paths, with each node's edges fetched once per call. Returns
    (paths, truncated): truncated when `max_paths` or the expansion budget cut the search short.
    """
    adjacency: dict[int, list[tuple[int, int]]] = {}

    def edges(node: int) -> list[tuple[int, int]]:
        if node not in adjacency:
            adjacency[node] = [
                (neighbour, relation) for _, neighbour, relation in steps([node], direction, moment=moment)
            ]
        return adjacency[node]

    paths: list[tuple[list[int], list[int]]] = []
    level: list[tuple[list[int], list[int]]] = [([source], [])]
    expansions = 0
    for _depth in range(max_depth):
        next_level = []
        for nodes, relations in level:
            for neighbour, relation in edges(nodes[-1]):
                expansions += 1
                if expansions > max_expansions:
                    return paths, True
                if neighbour in nodes:
                    continue
                if neighbour == target:
                    paths.append(([*nodes, neighbour], [*relations, relation]))
                    if len(paths) >= max_paths:
                        return paths, True
                else:
                    next_level.append(([*nodes, neighbour], [*relations, relation]))
        if not next_level:
            break
        level = next_level
    return paths, False
