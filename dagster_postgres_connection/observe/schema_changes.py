"""Diffing two catalog snapshots: per relation (columns, types, nullability, keys, comments)
and per catalog (relations created, dropped, renamed).

Pure functions over snapshot records: no database, no Dagster events. The sync turns a
`RelationSchemaDiff` into the metadata of a `schema_unchanged` check result.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import MetadataValue

from dagster_postgres_connection.catalog.models import (
    PostgresForeignKey,
    PostgresRelation,
    RelationKey,
)


@dataclass(frozen=True)
class RelationSchemaDiff:
    """What changed in one relation's shape. Empty when nothing did."""

    columns_added: Mapping[str, str] = field(default_factory=dict)  # column -> type
    columns_removed: Mapping[str, str] = field(default_factory=dict)  # column -> type
    types_changed: Mapping[str, str] = field(default_factory=dict)  # column -> "old -> new"
    nullability_changed: Mapping[str, str] = field(default_factory=dict)  # column -> "NOT NULL -> NULL"
    comments_changed: Mapping[str, str] = field(default_factory=dict)  # column or "(table)" -> "old -> new"
    keys_changed: Sequence[str] = ()  # "primary key (a) -> (a, b)", "unique (x) added", ...
    kind_changed: str | None = None  # "table -> view"

    def __bool__(self) -> bool:
        return any(
            (self.columns_added, self.columns_removed, self.types_changed, self.nullability_changed,
             self.comments_changed, self.keys_changed, self.kind_changed)
        )

    def describe(self) -> str:
        """One line per change, for the check's description and logs."""
        lines = [f"column `{c}` added ({t})" for c, t in self.columns_added.items()]
        lines += [f"column `{c}` removed (was {t})" for c, t in self.columns_removed.items()]
        lines += [f"column `{c}` type changed: {change}" for c, change in self.types_changed.items()]
        lines += [f"column `{c}` nullability changed: {change}" for c, change in self.nullability_changed.items()]
        lines += [f"comment of `{c}` changed: {change}" for c, change in self.comments_changed.items()]
        lines += list(self.keys_changed)
        if self.kind_changed:
            lines.append(f"kind changed: {self.kind_changed}")
        return "\n".join(lines)

    def to_metadata(self) -> dict[str, MetadataValue]:
        """Only the non-empty parts, as JSON the UI shows and alert rules can read."""
        parts: dict[str, Any] = {
            "columns_added": dict(self.columns_added),
            "columns_removed": dict(self.columns_removed),
            "types_changed": dict(self.types_changed),
            "nullability_changed": dict(self.nullability_changed),
            "comments_changed": dict(self.comments_changed),
            "keys_changed": list(self.keys_changed),
            "kind_changed": self.kind_changed,
        }
        return {name: MetadataValue.json(value) for name, value in parts.items() if value}


def diff_relation(previous: PostgresRelation, current: PostgresRelation) -> RelationSchemaDiff:
    before = {column.name: column for column in previous.columns}
    after = {column.name: column for column in current.columns}
    both = [name for name in after if name in before]
    comments = {
        name: f"{_show(before[name].comment)} -> {_show(after[name].comment)}"
        for name in both
        if before[name].comment != after[name].comment
    }
    if previous.comment != current.comment:
        comments = {"(table)": f"{_show(previous.comment)} -> {_show(current.comment)}", **comments}
    return RelationSchemaDiff(
        columns_added={name: after[name].type for name in after if name not in before},
        columns_removed={name: before[name].type for name in before if name not in after},
        types_changed={
            name: f"{before[name].type} -> {after[name].type}"
            for name in both
            if before[name].type != after[name].type
        },
        nullability_changed={
            name: f"{_nullability(before[name].nullable)} -> {_nullability(after[name].nullable)}"
            for name in both
            if before[name].nullable != after[name].nullable
        },
        comments_changed=comments,
        keys_changed=_keys_changed(previous, current),
        kind_changed=f"{previous.kind.value} -> {current.kind.value}" if previous.kind != current.kind else None,
    )


def _keys_changed(previous: PostgresRelation, current: PostgresRelation) -> list[str]:
    changes = []
    if tuple(previous.primary_key) != tuple(current.primary_key):
        changes.append(f"primary key changed: {_columns(previous.primary_key)} -> {_columns(current.primary_key)}")
    before_unique = {tuple(uc.columns) for uc in previous.unique_constraints}
    after_unique = {tuple(uc.columns) for uc in current.unique_constraints}
    changes += [f"unique {_columns(c)} added" for c in sorted(after_unique - before_unique)]
    changes += [f"unique {_columns(c)} removed" for c in sorted(before_unique - after_unique)]
    before_fk = {_foreign_key(fk) for fk in previous.foreign_keys}
    after_fk = {_foreign_key(fk) for fk in current.foreign_keys}
    changes += [f"foreign key {fk} added" for fk in sorted(after_fk - before_fk)]
    changes += [f"foreign key {fk} removed" for fk in sorted(before_fk - after_fk)]
    return changes


def _foreign_key(fk: PostgresForeignKey) -> str:
    return f"{_columns(fk.columns)} -> {fk.referred_schema}.{fk.referred_table}{_columns(fk.referred_columns)}"


def _columns(columns: Sequence[str]) -> str:
    return f"({', '.join(columns)})" if columns else "(none)"


def _nullability(nullable: bool) -> str:
    return "NULL" if nullable else "NOT NULL"


def _show(comment: str | None) -> str:
    return repr(comment) if comment is not None else "(none)"


@dataclass(frozen=True)
class CatalogDiff:
    """Relations created, dropped, renamed, and the shape changes of those still there."""

    created: Sequence[RelationKey]
    dropped: Sequence[RelationKey]
    renamed: Mapping[RelationKey, RelationKey]  # old -> new
    changed: Mapping[RelationKey, RelationSchemaDiff]

    def summary_metadata(self) -> dict[str, MetadataValue]:
        def names(keys: Sequence[RelationKey]) -> list[str]:
            return [".".join(key) for key in keys]

        return {
            "relations_created": MetadataValue.json(names(self.created)),
            "relations_dropped": MetadataValue.json(names(self.dropped)),
            "relations_renamed": MetadataValue.json(
                {".".join(old): ".".join(new) for old, new in self.renamed.items()}
            ),
            "relations_with_schema_changes": MetadataValue.int(len(self.changed)),
        }


def diff_catalogs(
    previous: Mapping[RelationKey, PostgresRelation],
    current: Mapping[RelationKey, PostgresRelation],
    *,
    previous_oids: Mapping[RelationKey, int] | None = None,
    current_oids: Mapping[RelationKey, int] | None = None,
) -> CatalogDiff:
    """Compare two catalogs (relations by `(database, schema, name)`).

    A dropped and a created relation are a rename when they have the same oid in the same
    database (oids are known for tables from the sync statistics). Relations without a known
    oid (views, or the first sync) fall back to a heuristic: they are a rename when they are
    the only such pair in their database with the same kind and the same columns and types.
    """
    previous_oids = previous_oids or {}
    current_oids = current_oids or {}
    gone = [key for key in previous if key not in current]
    new = [key for key in current if key not in previous]
    renamed: dict[RelationKey, RelationKey] = {}
    new_by_oid = {(key[0], current_oids[key]): key for key in new if key in current_oids}
    for key in gone:
        match = new_by_oid.get((key[0], previous_oids[key])) if key in previous_oids else None
        if match is not None:
            renamed[key] = match
    candidates: dict[tuple[object, ...], list[RelationKey]] = defaultdict(list)
    for key in new:
        if key not in current_oids:
            candidates[_shape(key, current[key])].append(key)
    gone_by_shape: dict[tuple[object, ...], list[RelationKey]] = defaultdict(list)
    for key in gone:
        if key not in previous_oids:
            gone_by_shape[_shape(key, previous[key])].append(key)
    for shape, old_keys in gone_by_shape.items():
        if len(old_keys) == 1 and len(candidates.get(shape, ())) == 1:
            renamed[old_keys[0]] = candidates[shape][0]
    changed = {}
    for key in current:
        before = previous.get(key)
        if before is not None:
            diff = diff_relation(before, current[key])
            if diff:
                changed[key] = diff
    return CatalogDiff(
        created=[key for key in new if key not in renamed.values()],
        dropped=[key for key in gone if key not in renamed],
        renamed=renamed,
        changed=changed,
    )


def _shape(key: RelationKey, relation: PostgresRelation) -> tuple[object, ...]:
    return (key[0], relation.kind, tuple((c.name, c.type) for c in relation.columns))
