"""`queries.LIST_INDEXES` spells plain indexes' definitions itself: they must read exactly as
`pg_get_indexdef` prints them, and every other kind of index must still be deparsed by it."""

from collections.abc import Callable

from sqlalchemy import create_engine

from dagster_postgres_connection.catalog import queries
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.utils import PgTarget

# Every option pg_get_indexdef prints, next to plain indexes, with names that need quoting.
INDEXES = """
CREATE SCHEMA "Odd Schema";
CREATE TYPE "Odd Schema".mood AS ENUM ('ok', 'meh');
CREATE DOMAIN "Odd Schema".pos AS integer CHECK (VALUE > 0);
CREATE TABLE "Odd Schema"."Order" (
    id integer PRIMARY KEY, "Mixed Case" text, code varchar(10), note text COLLATE "C",
    tags text[], mood "Odd Schema".mood, p "Odd Schema".pos, doc tsvector, at timestamptz, n numeric
);
CREATE UNIQUE INDEX "Order_two" ON "Odd Schema"."Order" ("Mixed Case", id);
CREATE INDEX order_desc ON "Odd Schema"."Order" (id DESC);
CREATE INDEX order_nulls ON "Odd Schema"."Order" (n NULLS FIRST);
CREATE INDEX order_collate ON "Odd Schema"."Order" ("Mixed Case" COLLATE "C");
CREATE INDEX order_note ON "Odd Schema"."Order" (note);
CREATE INDEX order_varchar ON "Odd Schema"."Order" (code);
CREATE INDEX order_pattern ON "Odd Schema"."Order" ("Mixed Case" text_pattern_ops);
CREATE INDEX order_include ON "Odd Schema"."Order" (id) INCLUDE (n);
CREATE INDEX order_partial ON "Odd Schema"."Order" (at) WHERE n > 0;
CREATE INDEX order_expression ON "Odd Schema"."Order" (lower("Mixed Case"), id);
CREATE UNIQUE INDEX order_nnd ON "Odd Schema"."Order" (code) NULLS NOT DISTINCT;
CREATE INDEX order_hash ON "Odd Schema"."Order" USING hash (code);
CREATE INDEX order_gin ON "Odd Schema"."Order" USING gin (tags);
CREATE INDEX order_gist ON "Odd Schema"."Order" USING gist (doc);
CREATE INDEX order_brin ON "Odd Schema"."Order" USING brin (at);
CREATE INDEX order_fill ON "Odd Schema"."Order" (n) WITH (fillfactor = 70);
CREATE INDEX order_enum ON "Odd Schema"."Order" (mood);
CREATE INDEX order_domain ON "Odd Schema"."Order" (p);
CREATE TABLE "Odd Schema".parted (id integer, at date) PARTITION BY RANGE (at);
CREATE TABLE "Odd Schema".parted_2026 PARTITION OF "Odd Schema".parted FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX parted_at ON "Odd Schema".parted (at);
CREATE MATERIALIZED VIEW "Odd Schema".mv AS SELECT id, code FROM "Odd Schema"."Order";
CREATE UNIQUE INDEX mv_id ON "Odd Schema".mv (id);
"""


def test_index_definitions_match_pg_get_indexdef(
    pagila_server: EmbeddedPostgres, fresh_database: Callable[..., PgTarget]
) -> None:
    target = fresh_database()
    pagila_server.execute(INDEXES, target.database)
    engine = create_engine(target.superuser_url)
    try:
        with engine.connect() as conn:
            schemas = ["Odd Schema", "public"]
            ours = {
                (row.schema, row.name): (row.definition, list(row.columns))
                for row in conn.execute(
                    queries.LIST_INDEXES, {"schemas": schemas, "vanished": [], "deparse_lock_wait": "100ms"}
                )
            }
            reference = {
                (row.schema, row.name): (row.definition, list(row.columns))
                for row in conn.exec_driver_sql(
                    """
                    SELECT n.nspname AS schema, i.relname AS name, pg_get_indexdef(x.indexrelid) AS definition,
                           ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
                                 FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k) AS columns
                    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                    JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname IN ('Odd Schema', 'public')
                    """
                )
            }
    finally:
        engine.dispose()
    assert ours == reference
    # The catalog has both kinds, so both paths were compared.
    assert ours[("Odd Schema", "Order_two")][0] == (
        'CREATE UNIQUE INDEX "Order_two" ON "Odd Schema"."Order" USING btree ("Mixed Case", id)'
    )
    assert ours[("Odd Schema", "order_pattern")][0].endswith('("Mixed Case" text_pattern_ops)')
    assert ours[("Odd Schema", "parted_at")][0].startswith("CREATE INDEX parted_at ON ONLY ")
    assert len(ours) > 30  # Pagila's own indexes too
