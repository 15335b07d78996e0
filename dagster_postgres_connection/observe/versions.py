"""Data versions: one string per relation that changes exactly when its data may have changed.

Dagster compares data versions to tell new data from a repeat (`AssetMaterialization` /
`AssetObservation` tag `dagster/data_version`), so a version must be the same for the same data
whatever process computes it, and cheap: it is built from what the statistics statements read
without opening a relation, never from `count(*)` or a scan. A relation's version is computed
by those statements themselves (`queries._with_data_version`), views' versions here.

- A table, partitioned table or materialized view: its oid, the relfilenodes of its storage
  (new on TRUNCATE, a rewrite, `REFRESH MATERIALIZED VIEW`, `VACUUM FULL`), its rows inserted +
  updated + deleted since the statistics were reset (every DML statement), and the time of that
  reset (so a reset that brings the counter back to an old value is still a new version). A
  statistics reset or a crash (which loses the counters) gives a new version for unchanged data:
  a spurious change, never a missed one.
- On a streaming standby replay does not count rows (`n_tup_*` stay 0), so `changes` is the
  standby's WAL replay position instead (`queries._VERSION_COLUMNS`): every relation gets a
  new version when the standby replayed anything, a conservative answer (see the README).
- A view: the versions of the relations it reads (its exact `pg_depend` dependencies, views
  among them, followed recursively), so a view moves with its tables.
"""

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from dagster_postgres_connection.catalog.models import PostgresRelation, RelationKey

# Bumped if the recipe changes: a new recipe must not produce a value an old one gave.
_RECIPE = "pg1"


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(part) for part in (_RECIPE, *parts)).encode()).hexdigest()


def view_dependencies(relations: Iterable[PostgresRelation]) -> dict[RelationKey, tuple[RelationKey, ...]]:
    """What each view among `relations` reads, by key: computed once at load, so change
    detection never needs the snapshot again."""
    return {
        (relation.database, relation.schema, relation.name): tuple(
            sorted({(relation.database, ref.schema, ref.name) for ref in relation.deps})
        )
        for relation in relations
        if relation.kind.is_view and not relation.kind.is_measured and relation.deps
    }


def with_view_versions(
    table_versions: Mapping[RelationKey, str], view_deps: Mapping[RelationKey, tuple[RelationKey, ...]]
) -> dict[RelationKey, str]:
    """`table_versions` plus a version for each view whose inputs have one.

    A view reading only relations without a version (foreign tables, functions) gets none. A
    dependency cycle (impossible in Postgres, but the snapshot is data) is cut, not looped on.
    """
    versions = dict(table_versions)
    visiting: set[RelationKey] = set()

    def version_of(key: RelationKey) -> str | None:
        if key in versions:
            return versions[key]
        deps = view_deps.get(key)
        if deps is None or key in visiting:
            return None
        visiting.add(key)
        inputs = [(".".join(dep), version) for dep in deps if (version := version_of(dep)) is not None]
        visiting.discard(key)
        if not inputs:
            return None
        versions[key] = _digest("view", *(f"{name}={version}" for name, version in inputs))
        return versions[key]

    for key in view_deps:
        version_of(key)
    return versions


@dataclass(frozen=True)
class ChangeWatch:
    """What change detection reads, fixed when the code location loads (no snapshot needed later).

    Args:
        schemas_by_database: The schemas whose statistics are read, per database: those of the
            selected relations and of what the selected views read.
        view_deps: What each view reads (`view_dependencies`).
    """

    schemas_by_database: Mapping[str, Sequence[str]]
    view_deps: Mapping[RelationKey, tuple[RelationKey, ...]]

    @classmethod
    def of(cls, relations: Iterable[PostgresRelation], selected: Collection[RelationKey]) -> "ChangeWatch":
        """For the `selected` keys among `relations` (every relation of the snapshot)."""
        relations = list(relations)
        view_deps = view_dependencies(relations)
        schemas: dict[str, set[str]] = {}
        # The selected relations, and what their views read, through other views.
        pending = [(r.database, r.schema, r.name) for r in relations if (r.database, r.schema, r.name) in selected]
        seen: set[RelationKey] = set()
        while pending:
            key = pending.pop()
            if key in seen:
                continue
            seen.add(key)
            schemas.setdefault(key[0], set()).add(key[1])
            pending.extend(view_deps.get(key, ()))
        return cls(
            schemas_by_database={database: tuple(sorted(names)) for database, names in sorted(schemas.items())},
            view_deps=view_deps,
        )
