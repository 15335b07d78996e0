"""`diff_relation` / `diff_catalogs` on hand-built records: the cases the live tests don't reach."""

from dagster_postgres_connection.catalog.models import (
    PostgresColumn,
    PostgresForeignKey,
    PostgresRelation,
    PostgresRelationKind,
)
from dagster_postgres_connection.observe.schema_changes import diff_catalogs, diff_relation


def relation(name: str = "t", kind: PostgresRelationKind = PostgresRelationKind.TABLE, **fields: object) -> PostgresRelation:
    columns = fields.pop("columns", [PostgresColumn(name="id", type="integer", nullable=False)])
    return PostgresRelation(database="db", schema="s", name=name, kind=kind, columns=columns, **fields)  # type: ignore[arg-type]


def test_identical_relations_have_no_diff() -> None:
    assert not diff_relation(relation(), relation())
    assert diff_relation(relation(), relation()).to_metadata() == {}


def test_keys_comments_and_kind() -> None:
    fk = PostgresForeignKey(name="fk", columns=["id"], referred_schema="s", referred_table="u", referred_columns=["id"])
    diff = diff_relation(
        relation(comment="old", primary_key=["id"]),
        relation(comment=None, foreign_keys=[fk], kind=PostgresRelationKind.VIEW),
    )
    assert diff.keys_changed == ["primary key changed: (id) -> (none)", "foreign key (id) -> s.u(id) added"]
    assert diff.comments_changed == {"(table)": "'old' -> (none)"}
    assert diff.kind_changed == "table -> view"


def test_renames_by_oid_beat_the_shape_heuristic() -> None:
    same_shape = {("db", "s", name): relation(name) for name in ("a", "b")}
    renamed = {("db", "s", name): relation(name) for name in ("c", "d")}
    by_oid = diff_catalogs(
        same_shape, renamed,
        previous_oids={("db", "s", "a"): 1, ("db", "s", "b"): 2},
        current_oids={("db", "s", "c"): 2, ("db", "s", "d"): 1},
    )
    assert by_oid.renamed == {("db", "s", "a"): ("db", "s", "d"), ("db", "s", "b"): ("db", "s", "c")}
    assert by_oid.dropped == [] and by_oid.created == []
    # Without oids, two same-shaped candidates are ambiguous: no rename is guessed.
    guessed = diff_catalogs(same_shape, renamed)
    assert guessed.renamed == {}
    assert len(guessed.dropped) == 2 and len(guessed.created) == 2


def test_a_unique_shape_is_a_rename_without_oids() -> None:
    wide = [PostgresColumn(name="x", type="text", nullable=True)]
    diff = diff_catalogs(
        {("db", "s", "old_view"): relation("old_view", PostgresRelationKind.VIEW, columns=wide)},
        {("db", "s", "new_view"): relation("new_view", PostgresRelationKind.VIEW, columns=wide)},
    )
    assert diff.renamed == {("db", "s", "old_view"): ("db", "s", "new_view")}
