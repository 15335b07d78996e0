"""The snapshot file (format 3): every field survives, old and future layouts load, damage is reported.

Catalog reads of real databases go through the same code in test_types.py (every column
field) and everywhere a snapshot is written; here one hand-built snapshot sets every field of
every record type to a non-default value, which no single real catalog does.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dagster_shared.record import get_record_annotations, get_record_defaults, is_record
from dagster_shared.serdes import serialize_value

from dagster_postgres_connection.catalog import codec
from dagster_postgres_connection.catalog.models import (
    PostgresCatalogSnapshot,
    PostgresColumn,
    PostgresColumnLineage,
    PostgresColumnRef,
    PostgresConstraint,
    PostgresDatabase,
    PostgresForeignKey,
    PostgresForeignTable,
    PostgresIndex,
    PostgresPartition,
    PostgresPartitioning,
    PostgresPolicy,
    PostgresQueryLineage,
    PostgresQueryUsage,
    PostgresRelation,
    PostgresRelationKind,
    PostgresRelationRef,
    PostgresRoutine,
    PostgresRoutineLineage,
    PostgresRoutineWrite,
    PostgresSkippedObject,
    PostgresTrigger,
    PostgresUniqueConstraint,
)
from dagster_postgres_connection.catalog.state import load_snapshot, write_snapshot
from dagster_postgres_connection.errors import PostgresSnapshotError

ROOT = PostgresRelationRef(schema="sales", name="orders")
PARTITION_REF = PostgresRelationRef(schema="sales", name="orders_2024", root_schema="sales", root_name="orders")


def everything() -> PostgresCatalogSnapshot:
    """A snapshot in which every field of every record type differs from its default."""
    column = PostgresColumn(
        name="Weird \"Col\"", type="character varying(25)", nullable=False, default="'x'::text",
        comment="ünïcode, \n newline", enum_labels=["a", "b'c"], domain_base_type="bigint",
        identity="BY DEFAULT", generated="STORED", generation_expression="(a * 2)",
    )  # fmt: skip
    relation = PostgresRelation(
        database="shop", schema="sales", name="orders", kind=PostgresRelationKind.PARTITIONED_TABLE,
        columns=[column, PostgresColumn(name="id", type="bigint", nullable=True)],
        owner="owner", comment="Orders.", row_estimate=12, size_bytes=8192, size_is_estimate=True,
        primary_key_name="orders_pkey", primary_key=["id", "day"],
        foreign_keys=[PostgresForeignKey(name="fk", columns=["c"], referred_schema="crm", referred_table="customer", referred_columns=["id"])],
        unique_constraints=[PostgresUniqueConstraint(name="uq", columns=["code"])],
        view_definition=" SELECT 1;",
        deps=[PARTITION_REF, ROOT],
        column_lineage=[PostgresColumnLineage(column="id", inputs=[PostgresColumnRef(relation=PARTITION_REF, column="id")])],
        indexes=[
            PostgresIndex(
                name="ix", columns=["lower(code)"], unique=True, primary=True, method="gist", definition="CREATE ...",
                orderings=["DESC"], include_columns=["note"], predicate="(id > 0)", nulls_not_distinct=True,
            )
        ],
        check_constraints=[PostgresConstraint(name="positive", definition="CHECK (id > 0)")],
        exclusion_constraints=[PostgresConstraint(name="no_overlap", definition="EXCLUDE USING gist (during WITH &&)")],
        partitioning=PostgresPartitioning(
            strategy="range", key="day",
            partitions=[PostgresPartition(schema="sales", name="orders_2024", parent="orders", bound="FOR VALUES FROM (1) TO (2)",
                                          level=2, is_leaf=False, partition_key="LIST (region)", row_estimate=3, size_bytes=4)],
        ),
        partition_of=PARTITION_REF, partition_bound="DEFAULT",
        inherits_from=[PARTITION_REF, ROOT],
        foreign_table=PostgresForeignTable(server="srv", wrapper="postgres_fdw", server_options={"host": "h"}, table_options={"table_name": "t"}),
        select_grantees=["PUBLIC", "analyst"], column_select_grants={"auditor": ["id", "day"]}, row_security=True, force_row_security=True,
        policies=[PostgresPolicy(name="own", command="SELECT", permissive=False, roles=["PUBLIC"], using="(a > 0)", with_check="(b > 0)")],
        written_by=[PostgresRoutineLineage(routine="etl.load(d date)", kind="procedure", operations=["INSERT"], reads=[PARTITION_REF],
                                           column_lineage=[PostgresColumnLineage(column="id", inputs=[PostgresColumnRef(relation=PARTITION_REF, column="id")])],
                                           trigger="t on sales.orders (AFTER INSERT, ROW)")],
        read_by=["etl.load(d date)"],
        written_by_queries=[PostgresQueryLineage(query="INSERT INTO t SELECT $1", operations=["MERGE"], calls=3, rows=4, role="etl",
                                                 reads=[PARTITION_REF],
                                                 column_lineage=[PostgresColumnLineage(column="id", inputs=[PostgresColumnRef(relation=PARTITION_REF, column="id")])])],
        query_usage=PostgresQueryUsage(calls=7, rows=8, statements=2),
    )  # fmt: skip
    routine = PostgresRoutine(
        schema="etl", name="load", kind="procedure", arguments="d date", language="plpgsql", return_type="void",
        volatility="stable", security_definer=True, owner="etl", comment="Loads.", search_path=["etl", "pg_temp"],
        triggers=[PostgresTrigger(name="t", schema="sales", table="orders", timing="AFTER", events=["INSERT"], level="ROW", enabled=False)],
        writes=[PostgresRoutineWrite(relation=PARTITION_REF, operations=["INSERT"], reads=[PARTITION_REF],
                                     column_lineage=[PostgresColumnLineage(column="id", inputs=[PostgresColumnRef(relation=PARTITION_REF, column="id")])])],
        reads=[PARTITION_REF], dynamic_sql=2, unparsed=["SELECT ~>=~"], unresolved=["tmp"],
    )  # fmt: skip
    return PostgresCatalogSnapshot(
        connection_name="shop_prod", host="db.internal", port=6543, captured_at=1764000000.5,
        databases=[PostgresDatabase(name="shop", server_version="18.1", relations=[relation], catalog_fingerprint="f00d",
                                    routines=[routine], query_history_problem="not installed")],
        skipped=[PostgresSkippedObject(database="shop", schema="hr", name=None, reason="no USAGE")],
        selection_fingerprint="abc", format_version=3, statement_count=11, read_seconds=0.25,
    )  # fmt: skip


def _non_default(record: object) -> None:
    """Guards `everything()`: a new field added to a model must be set there too."""
    defaults = get_record_defaults(type(record))
    for name in get_record_annotations(type(record)):
        value = getattr(record, name)
        if name in defaults and name != "format_version":
            assert value != defaults[name] and value not in ((), []), f"{type(record).__name__}.{name}"
        for item in value[:1] if isinstance(value, list) else [value]:  # the first of each list is full
            if is_record(type(item)):
                _non_default(item)


def test_every_field_of_every_record_round_trips(tmp_path: Path) -> None:
    snapshot = everything()
    _non_default(snapshot)
    path = tmp_path / "state"
    write_snapshot(snapshot, path)
    loaded = load_snapshot(path)
    assert serialize_value(loaded) == serialize_value(snapshot)
    assert loaded.relations()[0].columns[0] == snapshot.relations()[0].columns[0]
    # Field names are written once, in the header, not once per record.
    text = path.read_text()
    assert text.count('"generation_expression"') == 1
    assert "__class__" not in text


def test_defaults_are_not_written_and_come_back(tmp_path: Path) -> None:
    bare = PostgresCatalogSnapshot(
        connection_name="c", host="h", port=5432, captured_at=1.0,
        databases=[PostgresDatabase(name="d", server_version="16", relations=[
            PostgresRelation(database="d", schema="s", name="t", kind=PostgresRelationKind.TABLE,
                             columns=[PostgresColumn(name="id", type="int", nullable=True)]),
        ])],
    )  # fmt: skip
    document = json.loads(codec.dumps(bare))
    relation_row = document["snapshot"][4][0][2][0]  # snapshot.databases[0].relations[0]
    assert relation_row == ["d", "s", "t", "table", [["id", "int", True]]]
    loaded = codec.loads(document)
    assert serialize_value(loaded) == serialize_value(bare)


def _rewrite(path: Path, change: Callable[[Any], object]) -> Path:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    return path


def test_a_file_from_an_older_or_newer_version_of_the_models_loads(tmp_path: Path) -> None:
    path = tmp_path / "state"
    write_snapshot(everything(), path)

    def evolve(document: Any) -> None:
        # An older writer knew no `comment` on columns (it takes its default), and a newer
        # one wrote `collation`, which this version drops.
        fields = document["fields"]["PostgresColumn"]
        comment, fields[fields.index("comment")] = fields.index("comment"), "collation"
        for relation in document["snapshot"][4][0][2]:
            for row in relation[4]:
                if len(row) > comment:
                    row[comment] = "C"

    loaded = load_snapshot(_rewrite(path, evolve))
    columns = loaded.relations()[0].columns
    assert [c.comment for c in columns] == [None, None]
    assert columns[0].generation_expression == "(a * 2)"  # later positions unaffected


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d["snapshot"].__setitem__(2, "not a port"),  # a checked field of the wrong type
        lambda d: d["snapshot"][4][0][2][0].extend([None] * 40),  # more fields than the header lists
        lambda d: d["fields"].pop("PostgresRelation"),  # rows of a type the header does not list
        lambda d: d["snapshot"][4][0][2][0].__setitem__(3, "sequence"),  # not a relation kind
        lambda d: d["snapshot"][4][0].__setitem__(2, [["only", "three", "fields"]]),  # required field missing
    ],
    ids=["wrong-type", "long-row", "unlisted-record", "bad-enum", "missing-required"],
)
def test_a_damaged_file_is_reported_as_corrupt(tmp_path: Path, damage: Callable[[Any], object]) -> None:
    path = tmp_path / "state"
    write_snapshot(everything(), path)
    with pytest.raises(PostgresSnapshotError, match="corrupt or was written by an incompatible version"):
        load_snapshot(_rewrite(path, damage))


def test_streamed_file_with_several_databases_and_chunks(tmp_path: Path) -> None:
    # Relations are written a few hundred at a time, database by database: cross both boundaries.
    def relations(database: str, count: int) -> list[PostgresRelation]:
        return [
            PostgresRelation(database=database, schema="s", name=f"t{i}", kind=PostgresRelationKind.TABLE,
                             columns=[PostgresColumn(name="id", type="int", nullable=False)])
            for i in range(count)
        ]  # fmt: skip

    snapshot = PostgresCatalogSnapshot(
        connection_name="c", host="h", port=5432, captured_at=1.0,
        databases=[
            PostgresDatabase(name="big", server_version="18", relations=relations("big", 2 * codec._RELATIONS_PER_CHUNK + 1)),
            PostgresDatabase(name="empty", server_version="18", relations=[]),
            PostgresDatabase(name="small", server_version="18", relations=relations("small", 3)),
        ],
    )  # fmt: skip
    text = "".join(codec.dump_chunks(snapshot))
    # The same document as packing the whole snapshot in one go.
    assert json.loads(text)["snapshot"] == codec._SNAPSHOT_CODEC.pack(snapshot)
    assert "\\u0000" not in text and "\x00" not in text  # no marker left behind
    path = tmp_path / "state"
    write_snapshot(snapshot, path)
    loaded = load_snapshot(path)
    assert serialize_value(loaded) == serialize_value(snapshot)
    assert [len(d.relations) for d in loaded.databases] == [2 * codec._RELATIONS_PER_CHUNK + 1, 0, 3]
