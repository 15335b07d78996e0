"""Routines on real Postgres: the listing, and lineage through procedures, functions and triggers.

A view-free pipeline `raw_orders -> staged_orders -> revenue` moved by a procedure and a SQL
function, an audit table filled by a trigger function, dynamic SQL, a statement no parser knows,
a `BEGIN ATOMIC` body and a routine with its own search_path.
"""

from collections.abc import Iterator

import dagster as dg
import pytest

from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot, PostgresRoutine
from dagster_postgres_connection.definitions import build_connection_definitions
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection.translator import DagsterPostgresTranslator
from dagster_postgres_connection_tests.catalog.helpers import (
    CONNECTION,
    database_with,
    key,
    read,
    relation,
    settings_for,
    specs_by_key,
)
from dagster_postgres_connection_tests.utils import PgTarget

PIPELINE_DDL = """
CREATE SCHEMA etl; CREATE SCHEMA mart; CREATE SCHEMA hidden;
CREATE TABLE etl.raw_orders (id int PRIMARY KEY, customer_id int, amount_cents int, ordered_at timestamptz);
CREATE TABLE etl.staged_orders (order_id int PRIMARY KEY, customer_id int, amount numeric(10,2), day date);
CREATE TABLE mart.revenue (customer_id int, day date, revenue numeric, PRIMARY KEY (customer_id, day));
CREATE TABLE etl.order_audit (order_id int, amount_cents int, changed_at timestamptz, op text);
CREATE TABLE etl.events_src (id int, payload text);
CREATE TABLE etl.events (id int, payload text);

-- raw -> staged: a plpgsql procedure, unqualified names resolved in its schema
CREATE PROCEDURE etl.stage_orders(p_day date) LANGUAGE plpgsql AS $$
DECLARE
    v_rows int;
    v_before bigint := (SELECT count(*) FROM staged_orders);  -- a read in a declaration
BEGIN
    DELETE FROM staged_orders WHERE day = p_day;
    INSERT INTO staged_orders (order_id, customer_id, amount, day)
        SELECT r.id, r.customer_id, r.amount_cents / 100.0, p_day
        FROM raw_orders r WHERE r.ordered_at::date = p_day;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    IF v_rows = 0 THEN
        RAISE NOTICE 'nothing staged for %; see %', p_day, 'raw_orders';
    END IF;
END $$;

-- staged -> revenue: a SQL function, qualified names, another schema
CREATE FUNCTION mart.build_revenue(p_day date) RETURNS void LANGUAGE sql AS $$
    DELETE FROM mart.revenue WHERE day = p_day;
    INSERT INTO mart.revenue (customer_id, day, revenue)
        SELECT s.customer_id, s.day, sum(s.amount) FROM etl.staged_orders s WHERE s.day = $1 GROUP BY 1, 2;
$$;

-- a trigger function with its own search_path; NEW is the row of the table that fires it
CREATE FUNCTION etl.audit_order() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = etl, pg_temp AS $$
BEGIN
    INSERT INTO order_audit (order_id, amount_cents, changed_at, op) VALUES (NEW.id, NEW.amount_cents, now(), TG_OP);
    RETURN NEW;
END $$;
CREATE TRIGGER raw_orders_audit AFTER INSERT OR UPDATE ON etl.raw_orders
    FOR EACH ROW EXECUTE FUNCTION etl.audit_order();

-- dynamic SQL: reported, never guessed
CREATE FUNCTION etl.purge(p_table text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DELETE FROM %I', p_table);
END $$;

-- read-only, with a comment
CREATE FUNCTION etl.order_count() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM etl.raw_orders';
COMMENT ON FUNCTION etl.order_count() IS 'How many raw orders';

-- a BEGIN ATOMIC body (stored parsed, deparsed by pg_get_function_sqlbody)
CREATE FUNCTION etl.copy_events() RETURNS void LANGUAGE sql
BEGIN ATOMIC
    INSERT INTO etl.events SELECT id, payload FROM etl.events_src;
END;

-- an operator sqlglot cannot parse, and a temporary table
CREATE FUNCTION etl.odd() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE scratch AS SELECT * FROM etl.events;
    PERFORM 1 FROM scratch s WHERE s.payload ~>=~ 'password=s3cr3t';  -- a constant is never kept
END $$;

-- a routine of a schema the filters leave out
CREATE FUNCTION hidden.secret() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 1';
"""


@pytest.fixture(name="pipeline_db", scope="module")
def pipeline_db_fixture(pagila_server: EmbeddedPostgres, pagila: PgTarget) -> Iterator[PgTarget]:
    with database_with(pagila_server, "routines_pipeline", PIPELINE_DDL, "etl", "mart", "hidden") as target:
        yield target


@pytest.fixture(name="pipeline", scope="module")
def pipeline_fixture(pipeline_db: PgTarget) -> PostgresCatalogSnapshot:
    return read(pipeline_db, filters={"schemas": {"include": ["etl", "mart"]}})


def routines(snapshot: PostgresCatalogSnapshot) -> dict[str, PostgresRoutine]:
    (database,) = snapshot.databases
    return {f"{r.schema}.{r.name}": r for r in database.routines}


def test_routines_of_selected_schemas_are_listed_with_their_attributes(pipeline: PostgresCatalogSnapshot) -> None:
    found = routines(pipeline)
    assert list(found) == [
        "etl.audit_order", "etl.copy_events", "etl.odd", "etl.order_count", "etl.purge", "etl.stage_orders",
        "mart.build_revenue",
    ]  # hidden.secret is filtered out; sorted by schema, name
    stage = found["etl.stage_orders"]
    assert (stage.kind, stage.language, stage.return_type, stage.volatility) == ("procedure", "plpgsql", None, None)
    assert stage.signature == "etl.stage_orders(IN p_day date)"
    count = found["etl.order_count"]
    assert (count.kind, count.language, count.return_type, count.volatility) == ("function", "sql", "bigint", "stable")
    assert count.comment == "How many raw orders"
    assert count.owner == "postgres"  # the superuser that ran the DDL
    audit = found["etl.audit_order"]
    assert audit.security_definer and not count.security_definer
    assert audit.return_type == "trigger"
    assert audit.search_path == ["etl", "pg_temp"]
    assert [(t.name, t.schema, t.table, t.timing, list(t.events), t.level) for t in audit.triggers] == [
        ("raw_orders_audit", "etl", "raw_orders", "AFTER", ["INSERT", "UPDATE"], "ROW")
    ]


def test_procedure_lineage_resolves_unqualified_names_in_its_schema(pipeline: PostgresCatalogSnapshot) -> None:
    stage = routines(pipeline)["etl.stage_orders"]
    (write,) = stage.writes
    assert (write.relation.schema, write.relation.name) == ("etl", "staged_orders")
    assert list(write.operations) == ["DELETE", "INSERT"]
    assert [(r.schema, r.name) for r in write.reads] == [("etl", "raw_orders")]
    # p_day is a variable: `day` has no source column and is left out
    assert {c.column: [(i.relation.name, i.column) for i in c.inputs] for c in write.column_lineage} == {
        "order_id": [("raw_orders", "id")],
        "customer_id": [("raw_orders", "customer_id")],
        "amount": [("raw_orders", "amount_cents")],
    }
    assert {(r.schema, r.name) for r in stage.reads} == {("etl", "raw_orders"), ("etl", "staged_orders")}
    assert (stage.dynamic_sql, list(stage.unparsed), list(stage.unresolved)) == (0, [], [])


def test_sql_function_and_trigger_lineage(pipeline: PostgresCatalogSnapshot) -> None:
    revenue = relation(pipeline, "mart", "revenue")
    (writer,) = revenue.written_by
    assert (writer.routine, writer.kind, writer.trigger) == ("mart.build_revenue(p_day date)", "function", None)
    assert [(r.schema, r.name) for r in writer.reads] == [("etl", "staged_orders")]
    assert {c.column: [(i.relation.name, i.column) for i in c.inputs] for c in writer.column_lineage} == {
        "customer_id": [("staged_orders", "customer_id")],
        "day": [("staged_orders", "day")],
        "revenue": [("staged_orders", "amount")],
    }

    audit = relation(pipeline, "etl", "order_audit")
    (writer,) = audit.written_by
    assert writer.routine == "etl.audit_order()"
    assert writer.trigger == "raw_orders_audit on etl.raw_orders (AFTER INSERT OR UPDATE, ROW)"
    assert [(r.schema, r.name) for r in writer.reads] == [("etl", "raw_orders")]  # NEW is a raw_orders row
    assert {c.column: [(i.relation.name, i.column) for i in c.inputs] for c in writer.column_lineage} == {
        "order_id": [("raw_orders", "id")],
        "amount_cents": [("raw_orders", "amount_cents")],
    }

    raw = relation(pipeline, "etl", "raw_orders")
    assert list(raw.written_by) == []
    assert list(raw.read_by) == ["etl.audit_order()", "etl.order_count()", "etl.stage_orders(IN p_day date)"]


def test_dynamic_unparsed_and_begin_atomic_bodies(pipeline: PostgresCatalogSnapshot) -> None:
    found = routines(pipeline)
    purge = found["etl.purge"]
    assert (purge.dynamic_sql, list(purge.writes), list(purge.reads)) == (1, [], [])
    odd = found["etl.odd"]
    assert list(odd.unparsed) == ["SELECT 1 FROM scratch s WHERE s.payload ~>=~ '...'"]
    assert list(odd.unresolved) == []  # `scratch` is the target of CREATE TEMP TABLE, not a name it reads
    assert [(r.schema, r.name) for r in odd.reads] == [("etl", "events")]
    (copy,) = found["etl.copy_events"].writes
    assert (copy.relation.name, list(copy.operations), [r.name for r in copy.reads]) == ("events", ["INSERT"], ["events_src"])
    assert {c.column: [(i.relation.name, i.column) for i in c.inputs] for c in copy.column_lineage} == {
        "id": [("events_src", "id")],
        "payload": [("events_src", "payload")],
    }


def test_pipeline_is_a_graph_of_assets_with_routine_metadata(pipeline_db: PgTarget, pipeline: PostgresCatalogSnapshot) -> None:
    specs = specs_by_key(pipeline_db, pipeline, filters={"schemas": {"include": ["etl", "mart"]}})
    raw, staged, revenue, audit = (
        key(pipeline_db, "etl", "raw_orders"), key(pipeline_db, "etl", "staged_orders"),
        key(pipeline_db, "mart", "revenue"), key(pipeline_db, "etl", "order_audit"),
    )
    assert {dep.asset_key for dep in specs[staged].deps} == {raw}
    assert {dep.asset_key for dep in specs[revenue].deps} == {staged}
    assert {dep.asset_key for dep in specs[audit].deps} == {raw}
    assert specs[raw].deps == []

    metadata = specs[revenue].metadata
    assert metadata["dagster-postgres-connection/written_by"] == (
        "mart.build_revenue(p_day date) (function): DELETE, INSERT from etl.staged_orders"
    )
    lineage = metadata["dagster/column_lineage"]
    assert isinstance(lineage, dg.TableColumnLineage)
    assert lineage.deps_by_column["revenue"] == [dg.TableColumnDep(asset_key=staged, column_name="amount")]
    assert specs[audit].metadata["dagster-postgres-connection/written_by"] == (
        "etl.audit_order() (function) via trigger raw_orders_audit on etl.raw_orders "
        "(AFTER INSERT OR UPDATE, ROW): INSERT from etl.raw_orders"
    )
    assert specs[raw].metadata["dagster-postgres-connection/read_by"] == (
        "etl.audit_order()\netl.order_count()\netl.stage_orders(IN p_day date)"
    )


def test_the_sync_job_lists_the_routines_of_the_selected_schemas(pipeline_db: PgTarget, pipeline: PostgresCatalogSnapshot) -> None:
    settings = settings_for(pipeline_db, filters={"schemas": {"include": ["etl"]}})  # narrower than the snapshot
    defs = build_connection_definitions(settings, pipeline, DagsterPostgresTranslator())
    listing = defs.resolve_job_def(f"{CONNECTION}_sync").metadata["dagster-postgres-connection/routines"]
    assert isinstance(listing, dg.MarkdownMetadataValue)
    text = listing.value
    assert f"**{pipeline_db.database}.etl**" in text and "mart.build_revenue" not in text
    rows = {line.split(" | ")[0].strip("| `"): line for line in text.splitlines() if line.startswith("| `")}
    assert list(rows) == [
        "etl.audit_order()", "etl.copy_events()", "etl.odd()", "etl.order_count()", "etl.purge(p_table text)",
        "etl.stage_orders(IN p_day date)",
    ]
    assert rows["etl.audit_order()"] == (
        "| `etl.audit_order()` | function | plpgsql | trigger | volatile | yes | postgres "
        "| raw_orders_audit (AFTER INSERT OR UPDATE) on etl.raw_orders | INSERT etl.order_audit | etl.raw_orders |  |  |"
    )
    assert "1 dynamic SQL (EXECUTE)" in rows["etl.purge(p_table text)"]
    assert "unparsed: SELECT 1 FROM scratch s WHERE s.payload ~>=~ '...'" in rows["etl.odd()"]
    assert "s3cr3t" not in text
    assert rows["etl.order_count()"].endswith("| How many raw orders |")

    no_routines = settings_for(pipeline_db, filters={"schemas": {"include": ["public"]}})
    defs = build_connection_definitions(no_routines, pipeline, DagsterPostgresTranslator())
    assert "dagster-postgres-connection/routines" not in defs.resolve_job_def(f"{CONNECTION}_sync").metadata


# DataHub's own Postgres integration fixture (metadata-ingestion/tests/integration/postgres), where
# DataHub emits an edge for the LANGUAGE SQL procedure; plus the same body in plpgsql, which its
# lineage skips (it parses `sql` procedures only), and as a function (it reads procedures only).
DATAHUB_FIXTURE_DDL = """
CREATE TABLE raw_orders (id SERIAL PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(10, 2) NOT NULL);
CREATE TABLE processed_orders (order_id INT, customer_id INT, total DECIMAL(10, 2));
CREATE PROCEDURE etl_process_orders()
LANGUAGE SQL
AS $$
    INSERT INTO processed_orders (order_id, customer_id, total)
    SELECT id AS order_id, customer_id, amount AS total FROM raw_orders;
$$;
CREATE TABLE processed_orders_plpgsql (order_id INT, customer_id INT, total DECIMAL(10, 2));
CREATE PROCEDURE etl_process_orders_plpgsql() LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO processed_orders_plpgsql (order_id, customer_id, total)
    SELECT id AS order_id, customer_id, amount AS total FROM raw_orders;
END $$;
CREATE TABLE processed_orders_fn (order_id INT, customer_id INT, total DECIMAL(10, 2));
CREATE FUNCTION etl_process_orders_fn() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO processed_orders_fn SELECT id, customer_id, amount FROM raw_orders;
END $$;
"""


def test_the_datahub_fixture_procedure_gives_the_same_edge_and_column_lineage(
    pagila_server: EmbeddedPostgres, pagila: PgTarget
) -> None:
    with database_with(pagila_server, "routines_datahub_fixture", DATAHUB_FIXTURE_DDL) as target:
        pagila_server.execute(
            "GRANT SELECT ON raw_orders, processed_orders, processed_orders_plpgsql, processed_orders_fn TO dagster_reader",
            target.database,
        )
        snapshot = read(target)
        specs = specs_by_key(target, snapshot)
        raw = key(target, "public", "raw_orders")
        for table, routine in (
            ("processed_orders", "public.etl_process_orders()"),
            ("processed_orders_plpgsql", "public.etl_process_orders_plpgsql()"),
            ("processed_orders_fn", "public.etl_process_orders_fn()"),
        ):
            spec = specs[key(target, "public", table)]
            assert [dep.asset_key for dep in spec.deps] == [raw], table
            assert spec.metadata["dagster-postgres-connection/written_by"].startswith(f"{routine} "), table
            lineage = spec.metadata["dagster/column_lineage"]
            assert isinstance(lineage, dg.TableColumnLineage)
            assert {column: [d.column_name for d in deps] for column, deps in lineage.deps_by_column.items()} == {
                "order_id": ["id"], "customer_id": ["customer_id"], "total": ["amount"],
            }, table
