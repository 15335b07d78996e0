"""Partitions rolled up into their top partitioned table; legacy inheritance kept as it is.

A declaratively partitioned table is one asset: its partitions (and sub-partitions, at any
depth) are described in the root's `partitioning` and their row estimates and sizes are
summed into the root's. The partitions stay in the snapshot, each knowing its direct parent
and its root, so `expose_partitions` can make them assets at load time without a re-sync, and
a view reading a partition directly gets a dependency on the root otherwise.

Legacy inheritance (`CREATE TABLE child (...) INHERITS (parent)`) is different: a child is a
table with rows and columns of its own, so it stays a separate asset, with its parents as deps.

Everything is computed from two statements: the relation list the reader already runs, and
`queries.LIST_INHERITANCE`. Both cover every non-system schema, so a root whose partitions sit in
an unselected schema (or are filtered out) still counts them.
"""

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from dagster_postgres_connection.catalog import queries
from dagster_postgres_connection.catalog.models import (
    PostgresPartition,
    PostgresPartitioning,
    PostgresRelationRef,
    RelationName,
)

# `pg_get_partkeydef`: `RANGE (payment_date)`, `LIST (lower(region))`, `HASH (id, kind)`.
_PARTITION_KEY = re.compile(r"^(?P<strategy>\w+)\s*\((?P<key>.*)\)$", re.DOTALL)


@dataclass
class PartitionPlacement:
    """What partitioning and inheritance add to one relation's record."""

    partition_of: PostgresRelationRef | None = None
    partition_bound: str | None = None
    partitioning: PostgresPartitioning | None = None
    # A partitioned root has no storage: its leaves' sums replace its own (NULL) estimate and size.
    summed_row_estimate: int | None = None
    summed_size_bytes: int | None = None
    inherits_from: list[PostgresRelationRef] = field(default_factory=list)


class PartitionTree:
    """Partitions and inheritance of one database, and the fields they add to each relation."""

    def __init__(self, relation_rows: Iterable[Any], inheritance_rows: Iterable[Any]) -> None:
        self._rows: dict[RelationName, Any] = {(row.schema, row.name): row for row in relation_rows}
        self._parent: dict[RelationName, RelationName] = {}
        self._children: dict[RelationName, list[RelationName]] = defaultdict(list)
        self._inherits: dict[RelationName, list[RelationName]] = defaultdict(list)
        for row in inheritance_rows:
            child, parent = (row.schema, row.name), (row.parent_schema, row.parent_name)
            if row.is_partition:
                self._parent[child] = parent
                self._children[parent].append(child)
            else:
                self._inherits[child].append(parent)
        for children in self._children.values():
            children.sort()

    @classmethod
    def read(cls, conn: Connection, relation_rows: Iterable[Any]) -> "PartitionTree":
        return cls(relation_rows, conn.execute(queries.LIST_INHERITANCE))

    def root_of(self, key: RelationName) -> RelationName | None:
        """The top partitioned table above a partition; None for anything else."""
        if key not in self._parent:
            return None
        while key in self._parent:
            key = self._parent[key]
        return key

    def ref(self, key: RelationName) -> PostgresRelationRef:
        """A reference to `key` that knows the root it rolls up into, if it is a partition."""
        root = self.root_of(key)
        return PostgresRelationRef(
            schema=key[0], name=key[1], root_schema=root[0] if root else None, root_name=root[1] if root else None
        )

    def placement(self, key: RelationName) -> "PartitionPlacement":
        """Where `key` stands among partitions and inheritance: its parent and bound if it is a
        partition; its partitions, summed row estimate and size if it is a partitioned root."""
        placement = PartitionPlacement()
        if key in self._parent:
            placement.partition_of = self.ref(self._parent[key])
            placement.partition_bound = self._rows[key].partition_bound if key in self._rows else None
        elif key in self._rows and self._rows[key].partition_key is not None:
            partitions = list(self._descendants(key, level=1))
            placement.partitioning = PostgresPartitioning(
                **_parse_partition_key(self._rows[key].partition_key), partitions=partitions
            )
            leaves = [p for p in partitions if p.is_leaf]
            placement.summed_row_estimate = _sum(p.row_estimate for p in leaves)
            placement.summed_size_bytes = _sum(p.size_bytes for p in leaves)
        if key in self._inherits:
            placement.inherits_from = [self.ref(parent) for parent in self._inherits[key]]
        return placement

    def _descendants(self, key: RelationName, level: int) -> Iterable[PostgresPartition]:
        for child in self._children.get(key, ()):
            row = self._rows.get(child)
            is_leaf = child not in self._children
            yield PostgresPartition(
                schema=child[0],
                name=child[1],
                parent=key[1],
                bound=(row.partition_bound if row is not None else None) or "",
                level=level,
                is_leaf=is_leaf,
                partition_key=None if is_leaf or row is None else row.partition_key,
                row_estimate=row.row_estimate if row is not None else None,
                size_bytes=row.size_bytes if row is not None else None,
            )
            yield from self._descendants(child, level + 1)


def _parse_partition_key(definition: str | None) -> dict[str, str]:
    match = _PARTITION_KEY.match(definition or "")
    if match is None:  # never seen; keep whatever Postgres said rather than fail the read
        return {"strategy": "unknown", "key": definition or ""}
    return {"strategy": match["strategy"].lower(), "key": match["key"]}


def _sum(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None
