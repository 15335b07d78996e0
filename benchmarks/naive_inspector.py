"""Two reference points for reading a PostgreSQL catalog.

``naive_read``: what most tools do: SQLAlchemy ``inspect()``, list schemas and relations,
then call ``get_columns``/``get_pk_constraint``/``get_foreign_keys``/``get_table_comment``
once per relation.  Each call is at least one query, so the cost grows with
relations x round trips.

``raw_catalog_read``: the floor: a handful of bulk ``pg_catalog`` queries that fetch
everything a catalog needs (relations, columns, keys, view dependencies) in one go each.

Both count the statements they send with a ``before_cursor_execute`` listener.

Usage::

    python benchmarks/naive_inspector.py --url postgresql+psycopg2://... [--only raw|naive]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

# Schemas no catalog tool wants; SQLAlchemy's get_schema_names already hides pg_*.
SYSTEM_SCHEMAS = ("information_schema",)


@dataclass
class ReadResult:
    """Outcome of one catalog read: how many of each thing, statements sent, wall time."""

    method: str
    statements: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    # Per inspector method: [calls, statements, seconds]; shows where the time goes.
    per_call: dict[str, list[float]] = field(default_factory=dict)


@contextmanager
def count_statements(engine: sa.Engine) -> Iterator[list[int]]:
    """Count every cursor execute on ``engine`` while the block runs."""
    box = [0]

    def on_execute(*_args: Any) -> None:
        box[0] += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield box
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


def _warm_up(engine: sa.Engine) -> None:
    # The first connect runs the dialect's own setup queries; keep them out of the count.
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


def naive_read(engine: sa.Engine, *, schemas: list[str] | None = None) -> ReadResult:
    """Read the catalog the way most SQLAlchemy-based tools do: one call per relation.

    Tables (ordinary, partitioned and partitions, which ``get_table_names`` lists alike)
    get columns, primary key, foreign keys and comment; views, materialized views and
    foreign tables get columns and comment (their keys do not exist).
    """
    _warm_up(engine)
    counts = dict.fromkeys(
        ["schemas", "tables", "views", "materialized_views", "foreign_tables", "columns",
         "primary_keys", "foreign_keys", "comments"],
        0,
    )  # fmt: skip
    per_call: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    with count_statements(engine) as n:
        insp = sa.inspect(engine)

        def call(method: str, *args: Any, **kw: Any) -> Any:
            before, start = n[0], time.perf_counter()
            out = getattr(insp, method)(*args, **kw)
            acc = per_call.setdefault(method, [0, 0, 0.0])
            acc[0] += 1
            acc[1] += n[0] - before
            acc[2] += time.perf_counter() - start
            return out

        names = schemas or [s for s in call("get_schema_names") if s not in SYSTEM_SCHEMAS]
        for schema in names:
            counts["schemas"] += 1
            tables = call("get_table_names", schema=schema)
            others = {
                "views": call("get_view_names", schema=schema),
                "materialized_views": call("get_materialized_view_names", schema=schema),
                "foreign_tables": call("get_foreign_table_names", schema=schema),
            }
            for table in tables:
                counts["tables"] += 1
                counts["columns"] += len(call("get_columns", table, schema=schema))
                if call("get_pk_constraint", table, schema=schema).get("constrained_columns"):
                    counts["primary_keys"] += 1
                counts["foreign_keys"] += len(call("get_foreign_keys", table, schema=schema))
                if call("get_table_comment", table, schema=schema).get("text"):
                    counts["comments"] += 1
            for kind, rels in others.items():
                for rel in rels:
                    counts[kind] += 1
                    counts["columns"] += len(call("get_columns", rel, schema=schema))
                    if call("get_table_comment", rel, schema=schema).get("text"):
                        counts["comments"] += 1
    per_call = {k: [int(c), int(st), round(sec, 3)] for k, (c, st, sec) in per_call.items()}
    return ReadResult("naive_inspector", n[0], time.perf_counter() - t0, counts, per_call)


# Relation kinds a catalog shows: ordinary, partitioned, view, materialized view, foreign.
_RELKINDS = "('r', 'p', 'v', 'm', 'f')"
_USER_NS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'"
)

RAW_QUERIES: dict[str, str] = {
    "schemas": f"""
        SELECT n.oid, n.nspname, pg_get_userbyid(n.nspowner) AS owner, d.description
        FROM pg_namespace n
        LEFT JOIN pg_description d ON d.objoid = n.oid
             AND d.classoid = 'pg_namespace'::regclass AND d.objsubid = 0
        WHERE {_USER_NS}
    """,
    "relations": f"""
        SELECT c.oid, n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner) AS owner,
               d.description, c.reltuples, c.relpages, c.relispartition,
               i.inhparent AS partition_parent, pg_get_expr(c.relpartbound, c.oid) AS bound,
               CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS definition
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_description d ON d.objoid = c.oid
             AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
        LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND c.relispartition
        WHERE c.relkind IN {_RELKINDS} AND {_USER_NS}
    """,
    "columns": f"""
        SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
               a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid) AS default_expr,
               a.attidentity, a.attgenerated, d.description
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
        LEFT JOIN pg_description d ON d.objoid = a.attrelid
             AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped
          AND c.relkind IN {_RELKINDS} AND {_USER_NS}
    """,
    # p/u/f only: PG18 also stores every NOT NULL as a contype 'n' row, which we already
    # have from pg_attribute.attnotnull.
    "constraints": f"""
        SELECT co.conrelid, co.conname, co.contype, co.conkey, co.confrelid, co.confkey,
               co.confupdtype, co.confdeltype
        FROM pg_constraint co
        JOIN pg_class c ON c.oid = co.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE co.contype IN ('p', 'u', 'f') AND {_USER_NS}
    """,
    # A view's (or matview's) rewrite rule depends on every relation it reads.
    "view_dependencies": f"""
        SELECT DISTINCT r.ev_class AS view_oid, d.refobjid AS source_oid
        FROM pg_rewrite r
        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
             AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
        JOIN pg_class c ON c.oid = r.ev_class
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_NS}
    """,
}


def raw_catalog_read(engine: sa.Engine) -> ReadResult:
    """Fetch everything a catalog needs with five bulk pg_catalog queries; returns row counts."""
    _warm_up(engine)
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    with count_statements(engine) as n, engine.connect() as conn:
        for name, sql in RAW_QUERIES.items():
            counts[name] = len(conn.exec_driver_sql(sql).fetchall())
    return ReadResult("raw_pg_catalog", n[0], time.perf_counter() - t0, counts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Time a naive and a bulk catalog read.")
    p.add_argument("--url", required=True, help="SQLAlchemy or libpq URL of the database")
    p.add_argument("--only", choices=["naive", "raw"], default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    url = args.url
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    engine = sa.create_engine(url)
    try:
        results = []
        if args.only in (None, "raw"):
            results.append(raw_catalog_read(engine))
        if args.only in (None, "naive"):
            results.append(naive_read(engine))
    finally:
        engine.dispose()
    for r in results:
        if args.json:
            print(json.dumps(asdict(r)))
        else:
            print(f"{r.method}: {r.statements} statements, {r.seconds:.2f}s, {r.counts}")
            for method, (calls, stmts, secs) in r.per_call.items():
                print(f"  {method:>30}: {calls:>6} calls {stmts:>6} statements {secs:7.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
