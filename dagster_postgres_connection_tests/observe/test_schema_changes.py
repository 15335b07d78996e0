"""Schema-change detection: exact diffs in `schema_unchanged`, run-level created/dropped/renamed,
and the mass-disappearance guard."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from sqlalchemy import Connection, event
from sqlalchemy.engine import Engine

from dagster_postgres_connection.catalog.state import load_snapshot
from dagster_postgres_connection.observe.sync_job import CHECKS_PER_OP
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.observe.conftest import (
    SYNC_JOB,
    build_defs,
    check_evaluations,
    run_job,
    summary,
)
from dagster_postgres_connection_tests.utils import PgTarget

WIDGETS = """
CREATE SCHEMA shop;
GRANT USAGE ON SCHEMA shop TO dagster_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT SELECT ON TABLES TO dagster_reader;
CREATE TABLE shop.widgets (id integer PRIMARY KEY, name text NOT NULL, price integer, legacy text);
COMMENT ON COLUMN shop.widgets.price IS 'in cents';
"""


def shop_defs(db: PgTarget, snapshot: Path, **options: object) -> dg.Definitions:
    return build_defs(db, snapshot, filters={"schemas": {"include": ["shop"]}}, **options)


def test_alter_table_fails_the_check_with_exactly_that_diff(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    pagila_server.execute(WIDGETS, db.database)
    defs = shop_defs(db, tmp_path / "snapshot", schema_check_severity="ERROR")
    first = run_job(defs, instance)
    assert first.success and check_evaluations(first)["widgets"].passed

    pagila_server.execute(
        "ALTER TABLE shop.widgets ADD COLUMN color text;"
        " ALTER TABLE shop.widgets ALTER COLUMN price TYPE numeric(10, 2);"
        " ALTER TABLE shop.widgets DROP COLUMN legacy;"
        " ALTER TABLE shop.widgets ALTER COLUMN name DROP NOT NULL;"
        " ALTER TABLE shop.widgets ADD CONSTRAINT widgets_name_key UNIQUE (name);"
        " COMMENT ON COLUMN shop.widgets.price IS 'in euros'",
        db.database,
    )
    result = run_job(defs, instance)
    assert result.success  # a failed check is reported, not a failed run
    check = check_evaluations(result)["widgets"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    metadata = {key: value.value for key, value in check.metadata.items()}
    assert metadata == {
        "columns_added": {"color": "text"},
        "columns_removed": {"legacy": "text"},
        "types_changed": {"price": "integer -> numeric(10,2)"},
        "nullability_changed": {"name": "NOT NULL -> NULL"},
        "comments_changed": {"price": "'in cents' -> 'in euros'"},
        "keys_changed": ["unique (name) added"],
    }
    assert "column `color` added (text)" in (check.description or "")

    # The snapshot now holds the new shape: the next sync passes again.
    again = run_job(defs, instance)
    assert check_evaluations(again)["widgets"].passed


def test_unchanged_schema_reports_no_new_check_result(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    pagila_server.execute(WIDGETS, db.database)
    defs = shop_defs(db, tmp_path / "snapshot")
    assert check_evaluations(run_job(defs, instance))
    assert check_evaluations(run_job(defs, instance)) == {}


def test_relations_created_dropped_renamed_are_reported_per_run(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    pagila_server.execute(
        WIDGETS + "CREATE TABLE shop.gadgets (id int); CREATE TABLE shop.gizmos (id int, size real);"
        " CREATE TABLE shop.orders (id int, widget_id int);",
        db.database,
    )
    snapshot = tmp_path / "snapshot"
    defs = shop_defs(db, snapshot)
    assert run_job(defs, instance).success
    pagila_server.execute(
        "DROP TABLE shop.gadgets; ALTER TABLE shop.gizmos RENAME TO doohickeys;"
        " CREATE TABLE shop.invoices (id int)",
        db.database,
    )
    result = run_job(defs, instance)
    assert result.success
    assert summary(result)["relations_created"] == [f"{db.database}.shop.invoices"]
    assert summary(result)["relations_dropped"] == [f"{db.database}.shop.gadgets"]
    assert summary(result)["relations_renamed"] == {
        f"{db.database}.shop.gizmos": f"{db.database}.shop.doohickeys"
    }
    checks = check_evaluations(result)
    assert not checks["gadgets"].passed and checks["gadgets"].metadata["dropped"].value is True
    assert checks["gizmos"].metadata["renamed_to"].value == f"{db.database}.shop.doohickeys"
    assert set(load_snapshot(snapshot).relations_by_key()) == {
        (db.database, "shop", name) for name in ("widgets", "doohickeys", "orders", "invoices")
    }


def test_mass_disappearance_refuses_without_force(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    pagila_server.execute(
        WIDGETS + "".join(f"CREATE TABLE shop.t{i} (id int);" for i in range(9)), db.database
    )
    snapshot = tmp_path / "snapshot"
    defs = shop_defs(db, snapshot)
    assert run_job(defs, instance).success
    before = snapshot.read_bytes()
    pagila_server.execute("".join(f"DROP TABLE shop.t{i};" for i in range(8)), db.database)

    refused = run_job(defs, instance)
    assert not refused.success
    failure = next(e for e in refused.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
    assert "8 of 10 relations (80%) vanished" in message
    assert "`mass_disappearance_threshold` (50%)" in message
    assert f"launch the job `{SYNC_JOB}` with run config `ops: {{{SYNC_JOB}_op: {{config: {{force: true}}}}}}`" in message
    assert snapshot.read_bytes() == before  # the snapshot was kept
    assert not refused.get_asset_check_evaluations()

    forced = run_job(defs, instance, force=True)
    assert forced.success
    assert len(load_snapshot(snapshot).relations()) == 2


def test_a_higher_threshold_lets_the_sync_through(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    pagila_server.execute(WIDGETS + "CREATE TABLE shop.t0 (id int);", db.database)
    defs = shop_defs(db, tmp_path / "snapshot", mass_disappearance_threshold=0.9)
    assert run_job(defs, instance).success
    pagila_server.execute("DROP TABLE shop.t0", db.database)  # 50% of 2
    assert run_job(defs, instance).success


def test_the_declared_check_runs_alone_on_any_relation_name(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """As from the asset's Checks tab: only the selected check runs, and nothing is written."""
    pagila_server.execute(WIDGETS + 'CREATE TABLE shop."Order$Tmp" (id int);', db.database)
    snapshot = tmp_path / "snapshot"
    odd = dg.AssetKey(["pagila_prod", db.database, "shop", "Order$Tmp"])
    check_key = dg.AssetCheckKey(odd, "schema_unchanged")
    defs = dg.Definitions.merge(
        shop_defs(db, snapshot),
        dg.Definitions(jobs=[dg.define_asset_job("one_check", selection=dg.AssetSelection.checks(check_key))]),
    )
    dg.Definitions.validate_loadable(defs)
    assert run_job(defs, instance).success
    pagila_server.execute('ALTER TABLE shop."Order$Tmp" ADD COLUMN note text', db.database)
    before = snapshot.read_bytes()

    result = run_job(defs, instance, "one_check")
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.asset_key == odd and not evaluation.passed
    assert evaluation.metadata["columns_added"].value == {"note": "text"}
    assert snapshot.read_bytes() == before


def test_without_schema_checks_no_check_is_defined_and_the_sync_logs_the_change(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    pagila_server.execute(WIDGETS + "CREATE TABLE shop.gadgets (id int);", db.database)
    defs = shop_defs(db, tmp_path / "snapshot", schema_checks=False)
    graph = defs.resolve_asset_graph()
    assert len(graph.get_all_asset_keys()) == 2
    assert not graph.asset_check_keys
    assert run_job(defs, instance).success

    pagila_server.execute("ALTER TABLE shop.widgets ADD COLUMN color text", db.database)
    result = run_job(defs, instance)
    assert result.success
    assert not result.get_asset_check_evaluations()
    widgets = f"{db.database}.shop.widgets"
    assert summary(result)["schema_check_events"] == 0
    assert summary(result)["relations_with_schema_changes"] == 1
    assert summary(result)["schema_changes"] == {widgets: ["column `color` added (text)"]}
    warnings = [
        e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING
    ]
    expected = f"Relation `{widgets}` changed shape: column `color` added (text)."
    assert any(expected in w for w in warnings), warnings
    assert not any("gadgets" in w for w in warnings), warnings


def test_checks_of_many_relations_run_in_one_process_read_the_catalog_once(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """More relations than one check op holds: every check runs, and Postgres is read once."""
    tables = 2 * CHECKS_PER_OP + 3
    ddl = "".join(f"CREATE TABLE shop.t{i} (id int);" for i in range(tables))
    pagila_server.execute(WIDGETS + ddl, db.database)
    defs = shop_defs(db, tmp_path / "snapshot")
    check_keys = defs.resolve_asset_graph().asset_check_keys
    assert len(check_keys) == tables + 1
    assert run_job(defs, instance).success
    pagila_server.execute("ALTER TABLE shop.t20 ADD COLUMN note text", db.database)
    one_check = dg.define_asset_job("one_check", selection=dg.AssetSelection.checks(*list(check_keys)[:1]))
    all_checks = dg.define_asset_job("all_checks", selection=dg.AssetSelection.checks(*check_keys))
    defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[one_check, all_checks]))
    with postgres_statements() as one:
        assert run_job(defs, instance, "one_check").success

    with postgres_statements() as statements:
        result = run_job(defs, instance, "all_checks")
    assert result.success
    evaluations = {e.asset_key.path[-1]: e.passed for e in result.get_asset_check_evaluations()}
    assert len(evaluations) == tables + 1
    assert [name for name, passed in evaluations.items() if not passed] == ["t20"]
    # The three check ops share one catalog read: as many statements as one check alone.
    assert one and len(statements) == len(one), statements


@contextmanager
def postgres_statements() -> Iterator[list[str]]:
    """Statements sent to PostgreSQL by any engine (the instance's own SQLite ones left out)."""
    statements: list[str] = []

    def record(conn: Connection, _cursor: object, statement: str, *_args: object) -> None:
        if conn.dialect.name == "postgresql":
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", record)
