"""Generate a large, realistic PostgreSQL catalog for benchmarks.

Creates N ordinary tables spread over ~50 schemas, with mixed column types, an enum and
domains per schema, primary/unique/foreign keys, check constraints, identity, serial and
generated columns, comments, views (some on other views, some joining two schemas),
materialized views, foreign tables and partitioned tables with 100+ partitions each.

Everything is planned in Python from a seeded RNG first, then sent as large multi-statement
strings: one ``execute`` (one round trip, one implicit transaction) per chunk of
``tables_per_transaction`` tables, so the cost is the server's DDL work, not the network.

Usage::

    python benchmarks/generate_catalog.py --url postgresql+psycopg2://... \\
        --tables 10000 --schemas 50 [--seed 1] [--drop-existing]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

# Every generated schema carries this comment, so --drop-existing only ever drops our own.
SCHEMA_MARKER = "benchmarks/generate_catalog.py"
FDW_NAME = "bench_fdw"
FDW_SERVER = "bench_remote"

# A new table holds ~11.5 lock-table entries until commit (table, TOAST table and index,
# indexes, sequence, tables its FKs reference).  500 tables (~5.8k) fit the default lock
# table (max_locks_per_transaction=64 x ~135 processes ~= 8.6k).  Bigger transactions are
# also slower: each statement's end walks all locks held (LockReassignCurrentOwner), so
# 10k tables in one transaction cost 2.2x the server CPU of 20 x 500.
DEFAULT_TABLES_PER_TRANSACTION = 500
DEFAULT_VIEWS_PER_TRANSACTION = 1000
DEFAULT_PARTITIONS = 120

SCHEMA_DOMAINS = [
    "sales", "finance", "hr", "marketing", "inventory", "logistics", "support", "billing",
    "analytics", "product", "crm", "web", "iot", "payments", "risk", "legal", "ops", "audit",
    "catalog", "search", "identity", "shipping", "pricing", "procurement", "reporting",
]  # fmt: skip

TABLE_NOUNS = [
    "customer", "order", "order_item", "invoice", "invoice_line", "payment", "refund",
    "shipment", "carrier", "warehouse", "stock_level", "product", "product_variant", "category",
    "supplier", "purchase_order", "contract", "employee", "department", "salary", "timesheet",
    "campaign", "ad_click", "lead", "opportunity", "account", "contact", "ticket", "ticket_event",
    "subscription", "plan", "coupon", "discount", "price_list", "tax_rate", "currency_rate",
    "ledger_entry", "journal", "budget", "forecast", "device", "sensor_reading", "session",
    "page_view", "user", "user_role", "permission", "audit_log", "address", "region", "store",
    "return", "review", "rating", "wishlist", "cart", "cart_item", "delivery", "route", "vehicle",
]  # fmt: skip

TABLE_SUFFIXES = [
    "", "", "", "", "s", "_history", "_archive", "_daily", "_monthly", "_snapshot", "_staging",
    "_v2", "_audit", "_map", "_summary", "_raw", "_clean", "_dim", "_fact", "_log", "_backup",
]  # fmt: skip

# A few relations with names that need quoting: catalogs in the wild have them.
QUOTED_NAMES = ["LegacyImport", "Customer Export", "ETL-Staging", "Kunden_Übersicht", "Order$Tmp"]

# The catalogs this generator fills; ANALYZEd at the end (see generate_catalog).
ANALYZED_CATALOGS = [
    "pg_class", "pg_attribute", "pg_attrdef", "pg_constraint", "pg_depend", "pg_description",
    "pg_type", "pg_index", "pg_inherits", "pg_rewrite", "pg_namespace", "pg_sequence",
    "pg_trigger", "pg_partitioned_table", "pg_foreign_table",
]  # fmt: skip

PARTITION_ROOTS = ["events", "customers_by_region", "sessions", "measurements"]

ENUM_LABELS = ["active", "inactive", "pending", "suspended", "archived"]

# (column name stem, SQL type, default or None); "{enum}"/"{email}"/"{amount}" are replaced by
# the schema's own enum/domain types.
COLUMN_POOL: list[tuple[str, str, str | None]] = [
    ("quantity", "integer", "0"),
    ("attempts", "integer", None),
    ("priority", "smallint", None),
    ("version", "integer", "1"),
    ("rank", "integer", None),
    ("external_id", "bigint", None),
    ("size_bytes", "bigint", None),
    ("view_count", "bigint", "0"),
    ("amount", "numeric(12,2)", None),
    ("price", "numeric(12,2)", None),
    ("total", "numeric(12,2)", "0"),
    ("discount", "numeric(12,2)", None),
    ("tax", "numeric(12,2)", None),
    ("balance", "{amount}", None),
    ("exchange_rate", "numeric(18,8)", None),
    ("score", "double precision", None),
    ("ratio", "real", None),
    ("name", "text", None),
    ("title", "text", None),
    ("description", "text", None),
    ("notes", "text", None),
    ("address_line", "text", None),
    ("code", "varchar(16)", None),
    ("sku", "varchar(64)", None),
    ("phone", "varchar(32)", None),
    ("country_code", "varchar(2)", None),
    ("currency", "char(3)", "'EUR'"),
    ("email", "{email}", None),
    ("created_at", "timestamptz", "now()"),
    ("updated_at", "timestamptz", None),
    ("deleted_at", "timestamptz", None),
    ("shipped_at", "timestamptz", None),
    ("last_seen_at", "timestamp", None),
    ("due_date", "date", None),
    ("valid_from", "date", "CURRENT_DATE"),
    ("valid_to", "date", None),
    ("birth_date", "date", None),
    ("is_active", "boolean", "true"),
    ("is_deleted", "boolean", "false"),
    ("verified", "boolean", None),
    ("metadata", "jsonb", "'{}'::jsonb"),
    ("attributes", "jsonb", None),
    ("payload", "jsonb", None),
    ("correlation_id", "uuid", None),
    ("external_ref", "uuid", "gen_random_uuid()"),
    ("tags", "text[]", None),
    ("scores", "integer[]", None),
    ("status", "{enum}", "'active'"),
    ("state", "{enum}", None),
    ("ip_address", "inet", None),
    ("duration", "interval", None),
    ("opens_at", "time", None),
    ("thumbnail", "bytea", None),
]

NUMERIC_STEMS = {"amount", "price", "total", "discount", "tax", "quantity"}

TABLE_COMMENTS = [
    "One row per {noun}; loaded nightly from the operational system.",
    "{Noun} records as seen by the {schema} team.",
    "Deduplicated {noun} data. Do not write directly: owned by the ingestion job.",
    "Slowly changing dimension for {noun} (type 2).",
    "Raw {noun} feed, kept 90 days for replays.",
    "{Noun} facts, grain: one row per event — see the runbook for late arrivals.",
    "Legacy {noun} table kept for the 'old' reports; ask #data before changing it.",
]

COLUMN_COMMENTS = [
    "Business key of the {col}.",
    "Set by the application, never updated.",
    "Nullable until the record is confirmed.",
    "In the currency given by the currency column.",
    "UTC. Filled by a trigger in the source system.",
    "Free text entered by users — may contain PII.",
    "Deprecated: use the new column instead.",
]


@dataclass
class Column:
    name: str
    sql_type: str
    not_null: bool = False
    default: str | None = None
    extra: str = ""  # identity / generated clause
    comment: str | None = None


@dataclass
class ForeignKey:
    columns: list[str]
    ref: Table
    ref_columns: list[str]
    on_delete: str = ""


@dataclass
class Table:
    index: int
    schema: str
    name: str
    noun: str
    columns: list[Column] = field(default_factory=list)
    pk: list[str] = field(default_factory=list)
    uniques: list[list[str]] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    fks: list[ForeignKey] = field(default_factory=list)
    indexes: list[list[str]] = field(default_factory=list)
    comment: str | None = None

    @property
    def qname(self) -> str:
        return f"{q(self.schema)}.{q(self.name)}"


@dataclass
class View:
    schema: str
    name: str
    columns: list[str]  # output column names, so later views can select from this one
    sql: str  # the SELECT
    materialized: bool = False
    comment: str | None = None

    @property
    def qname(self) -> str:
        return f"{q(self.schema)}.{q(self.name)}"


@dataclass
class CatalogStats:
    """What the generated schemas contain, counted from pg_catalog after generation.

    ``tables`` are ordinary tables that are not partitions; ``partitioned_tables`` are the
    roots of partition trees; ``partitions`` are all relations with ``relispartition``
    (leaves and the intermediate level of the two-level tree).  ``columns`` covers tables,
    partitioned tables, partitions, views, materialized views and foreign tables.
    Constraint counts include the copies Postgres makes on each partition.
    """

    schemas: int = 0
    tables: int = 0
    partitioned_tables: int = 0
    partitions: int = 0
    views: int = 0
    materialized_views: int = 0
    foreign_tables: int = 0
    sequences: int = 0
    indexes: int = 0
    columns: int = 0
    primary_keys: int = 0
    unique_constraints: int = 0
    foreign_keys: int = 0
    check_constraints: int = 0
    relation_comments: int = 0
    column_comments: int = 0
    view_dependencies: int = 0
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)
    statements: int = 0
    round_trips: int = 0


def q(ident: str) -> str:
    """Quote an identifier (always: cheap, and safe for the deliberately odd names)."""
    return '"' + ident.replace('"', '""') + '"'


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --------------------------------------------------------------------------------------------
# Planning: pure Python, deterministic for a given seed.
# --------------------------------------------------------------------------------------------


@dataclass
class Plan:
    schemas: list[str]
    setup: list[str]
    tables: list[Table]
    partitioned: list[list[str]]  # one statement list per partitioned tree
    foreign: list[str]
    views: list[View]
    matviews: list[View]


def schema_names(count: int) -> list[str]:
    return [f"{SCHEMA_DOMAINS[i % len(SCHEMA_DOMAINS)]}_{i:02d}" for i in range(count)]


def _column_type(stem_type: str, schema: str) -> str:
    return (
        stem_type.replace("{enum}", f"{q(schema)}.status_t")
        .replace("{email}", f"{q(schema)}.email_address")
        .replace("{amount}", f"{q(schema)}.positive_amount")
    )


def _plan_table(
    rng: random.Random,
    index: int,
    schema: str,
    name: str,
    noun: str,
    earlier_same: Sequence[Table],
    earlier_all: Sequence[Table],
) -> Table:
    t = Table(index=index, schema=schema, name=name, noun=noun)
    used: set[str] = set()

    def add(col: Column) -> Column:
        base, n = col.name, 2
        while col.name in used:  # unique column names per table
            col.name = f"{base}_{n}"
            n += 1
        used.add(col.name)
        t.columns.append(col)
        return col

    # Primary key style: most tables have one; a few composite; some none.
    r = rng.random()
    if r < 0.25:
        kind = rng.choice(["ALWAYS", "BY DEFAULT"])
        add(Column("id", "bigint", not_null=True, extra=f"GENERATED {kind} AS IDENTITY"))
        t.pk = ["id"]
    elif r < 0.33:
        add(Column("id", "bigserial", not_null=True))
        t.pk = ["id"]
    elif r < 0.70:
        add(Column("id", "bigint", not_null=True))
        t.pk = ["id"]
    elif r < 0.80:
        add(Column("id", "uuid", not_null=True, default="gen_random_uuid()"))
        t.pk = ["id"]
    elif r < 0.88:
        add(Column(f"{noun}_id", "bigint", not_null=True))
        add(Column("line_no", "integer", not_null=True))
        t.pk = [f"{noun}_id", "line_no"]
    elif r < 0.92:
        add(Column(f"{noun}_code", "varchar(32)", not_null=True))
        t.pk = [f"{noun}_code"]
    # else: no primary key (8%)

    # Foreign keys to earlier tables that have a primary key: 70% same schema, 30% any schema.
    n_fks = rng.choices([0, 1, 2, 3, 4], weights=[30, 35, 20, 10, 5])[0]
    for _ in range(n_fks):
        pool = earlier_same if (earlier_same and rng.random() < 0.7) else earlier_all
        if not pool:
            break
        ref = pool[rng.randrange(len(pool))]
        if not ref.pk or ref is t:
            continue
        cols: list[str] = []
        for pk_col in ref.pk:
            ref_type = next(c.sql_type for c in ref.columns if c.name == pk_col)
            ref_type = {"bigserial": "bigint"}.get(ref_type, ref_type)
            col = add(
                Column(
                    f"{ref.noun}_{pk_col}" if pk_col != "id" else f"{ref.noun}_id",
                    ref_type,
                    not_null=rng.random() < 0.6,
                )
            )
            cols.append(col.name)
        on_delete = rng.choice(["", "", "", " ON DELETE CASCADE", " ON DELETE SET NULL"])
        if on_delete == " ON DELETE SET NULL" and any(
            c.not_null for c in t.columns if c.name in cols
        ):
            on_delete = ""
        t.fks.append(ForeignKey(cols, ref, list(ref.pk), on_delete))
        if rng.random() < 0.3:
            t.indexes.append(cols)

    # Fill up to 5-30 columns, most tables between 8 and 15.
    target = max(len(t.columns) + 1, min(30, max(5, round(rng.triangular(5, 30, 9)))))
    while len(t.columns) < target:
        stem, typ, default = COLUMN_POOL[rng.randrange(len(COLUMN_POOL))]
        add(
            Column(
                stem,
                _column_type(typ, schema),
                not_null=rng.random() < 0.35,
                default=default if rng.random() < 0.6 else None,
            )
        )

    # Generated columns on ~6% of tables that have a numeric column to derive from.
    numeric = [c for c in t.columns if c.name in NUMERIC_STEMS and not c.extra]
    if numeric and rng.random() < 0.06:
        src = numeric[0].name
        add(
            Column(
                f"{src}_gross",
                "numeric(14,2)",
                extra=f"GENERATED ALWAYS AS ({q(src)} * 1.19) STORED",
            )
        )

    # Unique constraints on ~15% (sometimes two columns), checks on ~10%.
    plain = [
        c.name
        for c in t.columns
        if c.name not in t.pk and not c.extra and not c.sql_type.endswith(("[]", "jsonb", "bytea"))
    ]
    if plain and rng.random() < 0.15:
        k = 2 if len(plain) > 1 and rng.random() < 0.3 else 1
        t.uniques.append(rng.sample(plain, k))
    if numeric and rng.random() < 0.10:
        t.checks.append(f"{q(numeric[-1].name)} >= 0")

    # Comments: ~30% of tables, ~20% of columns.
    if rng.random() < 0.30:
        t.comment = rng.choice(TABLE_COMMENTS).format(
            noun=noun.replace("_", " "), Noun=noun.replace("_", " ").capitalize(), schema=schema
        )
    for c in t.columns:
        if rng.random() < 0.20:
            c.comment = rng.choice(COLUMN_COMMENTS).format(col=c.name.replace("_", " "))
    return t


def _table_ddl(t: Table) -> list[str]:
    parts: list[str] = []
    for c in t.columns:
        s = f"{q(c.name)} {c.sql_type}"
        if c.extra:
            s += f" {c.extra}"
        if c.default is not None:
            s += f" DEFAULT {c.default}"
        if c.not_null:
            s += " NOT NULL"
        parts.append(s)
    if t.pk:
        parts.append(f"PRIMARY KEY ({', '.join(map(q, t.pk))})")
    for u in t.uniques:
        parts.append(f"UNIQUE ({', '.join(map(q, u))})")
    for chk in t.checks:
        parts.append(f"CHECK ({chk})")
    # FKs inline: the table is new and empty, so no validation scan and no extra statement.
    for fk in t.fks:
        parts.append(
            f"FOREIGN KEY ({', '.join(map(q, fk.columns))}) REFERENCES {fk.ref.qname} "
            f"({', '.join(map(q, fk.ref_columns))}){fk.on_delete}"
        )
    stmts = [f"CREATE TABLE {t.qname} ({', '.join(parts)})"]
    # Unnamed indexes/constraints: Postgres picks names that cannot collide.
    for cols in t.indexes:
        stmts.append(f"CREATE INDEX ON {t.qname} ({', '.join(map(q, cols))})")
    if t.comment:
        stmts.append(f"COMMENT ON TABLE {t.qname} IS {lit(t.comment)}")
    for c in t.columns:
        if c.comment:
            stmts.append(f"COMMENT ON COLUMN {t.qname}.{q(c.name)} IS {lit(c.comment)}")
    return stmts


def _month_add(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    return date(d.year + y, m + 1, 1)


def _plan_partitioned(pick: list[str], rng: random.Random, partitions: int) -> list[list[str]]:
    """Four partition trees, each with ``partitions`` leaves: range (monthly on a date),
    list (country codes), hash (on a uuid) and two levels (yearly range, then hash)."""
    if partitions <= 0:
        return []
    trees: list[list[str]] = []

    # Range on a date, one partition per month, plus a default partition.
    s = q(pick[0])
    stmts = [
        f"CREATE TABLE {s}.events (event_id bigint NOT NULL, event_date date NOT NULL, "
        "event_type text, payload jsonb, PRIMARY KEY (event_id, event_date)) "
        "PARTITION BY RANGE (event_date)",
        f"COMMENT ON TABLE {s}.events IS 'Application events, one partition per month.'",
    ]
    start = date(2016, 1, 1)
    for i in range(partitions):
        lo, hi = _month_add(start, i), _month_add(start, i + 1)
        stmts.append(
            f"CREATE TABLE {s}.{q(f'events_{lo:%Y_%m}')} PARTITION OF {s}.events "
            f"FOR VALUES FROM ('{lo}') TO ('{hi}')"
        )
    stmts.append(f"CREATE TABLE {s}.events_default PARTITION OF {s}.events DEFAULT")
    trees.append(stmts)

    # List on a two-letter region code.
    s = q(pick[1])
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    codes = [a + b for a in letters for b in letters]
    rng.shuffle(codes)
    stmts = [
        f"CREATE TABLE {s}.customers_by_region (customer_id bigint NOT NULL, "
        "region_code char(2) NOT NULL, name text, email text, "
        "PRIMARY KEY (customer_id, region_code)) PARTITION BY LIST (region_code)",
    ]
    for i in range(partitions):
        vals = codes[2 * i : 2 * i + (2 if i % 5 == 0 else 1)]
        stmts.append(
            f"CREATE TABLE {s}.{q(f'customers_region_{i:03d}')} PARTITION OF "
            f"{s}.customers_by_region FOR VALUES IN ({', '.join(map(lit, vals))})"
        )
    trees.append(stmts)

    # Hash on a uuid.
    s = q(pick[2])
    stmts = [
        f"CREATE TABLE {s}.sessions (session_id uuid NOT NULL PRIMARY KEY, user_id bigint, "
        "started_at timestamptz NOT NULL DEFAULT now(), user_agent text) "
        "PARTITION BY HASH (session_id)",
    ]
    for i in range(partitions):
        stmts.append(
            f"CREATE TABLE {s}.{q(f'sessions_p{i:03d}')} PARTITION OF {s}.sessions "
            f"FOR VALUES WITH (MODULUS {partitions}, REMAINDER {i})"
        )
    trees.append(stmts)

    # Two levels: range by year, each year hash-partitioned by sensor.
    s = q(pick[3])
    years = 10
    per_year = max(1, -(-partitions // years))
    stmts = [
        f"CREATE TABLE {s}.measurements (sensor_id integer NOT NULL, measured_on date NOT NULL, "
        "value double precision, unit text) PARTITION BY RANGE (measured_on)",
        f"COMMENT ON TABLE {s}.measurements IS "
        "'Sensor readings: yearly range partitions, each hash-partitioned by sensor.'",
    ]
    for y in range(2016, 2016 + years):
        mid = q(f"measurements_{y}")
        stmts.append(
            f"CREATE TABLE {s}.{mid} PARTITION OF {s}.measurements "
            f"FOR VALUES FROM ('{y}-01-01') TO ('{y + 1}-01-01') PARTITION BY HASH (sensor_id)"
        )
        for h in range(per_year):
            stmts.append(
                f"CREATE TABLE {s}.{q(f'measurements_{y}_h{h:02d}')} PARTITION OF {s}.{mid} "
                f"FOR VALUES WITH (MODULUS {per_year}, REMAINDER {h})"
            )
    trees.append(stmts)
    return trees


def _plan_views(
    rng: random.Random, tables: list[Table], count: int, materialized: bool, earlier: list[View]
) -> list[View]:
    """Views of four shapes: a filtered projection of one table, a join of two tables linked
    by a foreign key (often across schemas), an aggregate, and a view over earlier views."""
    views: list[View] = []
    with_fk = [t for t in tables if t.fks]
    prefix = "mv" if materialized else "v"
    names: set[tuple[str, str]] = set()
    for i in range(count):
        shape = rng.random()
        pool = earlier + views
        if pool and shape < 0.25:
            # View over an earlier view; repeated picks make chains of views.
            base = pool[rng.randrange(len(pool))]
            cols = rng.sample(base.columns, max(1, min(len(base.columns), rng.randint(1, 6))))
            sql = f"SELECT {', '.join(f'b.{q(c)}' for c in cols)} FROM {base.qname} b"
            schema, noun = base.schema, base.name.split("_", 1)[-1]
        elif shape < 0.60 and with_fk:
            # Join child to parent over its foreign key; parent may live in another schema.
            child = with_fk[rng.randrange(len(with_fk))]
            fk = child.fks[rng.randrange(len(child.fks))]
            parent = fk.ref
            ccols = [c.name for c in rng.sample(child.columns, min(4, len(child.columns)))]
            pcols = [c.name for c in rng.sample(parent.columns, min(3, len(parent.columns)))]
            on = " AND ".join(
                f"c.{q(a)} = p.{q(b)}" for a, b in zip(fk.columns, fk.ref_columns, strict=True)
            )
            cols, select = list(ccols), [f"c.{q(c)}" for c in ccols]
            for c in pcols:  # output names must be unique: prefix, then number if needed
                out, n = f"{parent.noun}_{c}", 2
                while out in cols:
                    out, n = f"{parent.noun}_{c}_{n}", n + 1
                cols.append(out)
                select.append(f"p.{q(c)} AS {q(out)}")
            sql = f"SELECT {', '.join(select)} FROM {child.qname} c JOIN {parent.qname} p ON {on}"
            schema, noun = child.schema, f"{child.noun}_{parent.noun}"
        elif shape < 0.75:
            t = tables[rng.randrange(len(tables))]
            group = t.columns[rng.randrange(len(t.columns))].name
            cols = [group, "row_count"]
            sql = f"SELECT t.{q(group)}, count(*) AS row_count FROM {t.qname} t GROUP BY 1"
            schema, noun = t.schema, f"{t.noun}_by_{group}"
        else:
            t = tables[rng.randrange(len(tables))]
            cols = [c.name for c in rng.sample(t.columns, min(len(t.columns), rng.randint(2, 8)))]
            where = ""
            flags = [c.name for c in t.columns if c.sql_type == "boolean"]
            if flags:
                where = f" WHERE t.{q(flags[0])}"
            sql = f"SELECT {', '.join(f't.{q(c)}' for c in cols)} FROM {t.qname} t{where}"
            schema, noun = t.schema, t.noun
        name = f"{prefix}_{noun}"[:55]
        if (schema, name) in names:
            name = f"{name}_{i}"
        names.add((schema, name))
        comment = None
        if rng.random() < 0.3:
            comment = f"Convenience {'materialized ' if materialized else ''}view for {noun.replace('_', ' ')}."
        views.append(View(schema, name, cols, sql, materialized, comment))
    return views


def plan_catalog(tables: int, schemas: int, seed: int, partitions: int = DEFAULT_PARTITIONS,
                 foreign_tables: int | None = None) -> Plan:  # fmt: skip
    rng = random.Random(seed)
    names = schema_names(schemas)
    setup: list[str] = []
    for s in names:
        setup += [
            f"CREATE SCHEMA {q(s)}",
            f"COMMENT ON SCHEMA {q(s)} IS {lit(SCHEMA_MARKER + f' (seed {seed})')}",
            f"CREATE TYPE {q(s)}.status_t AS ENUM ({', '.join(map(lit, ENUM_LABELS))})",
            f"CREATE DOMAIN {q(s)}.email_address AS varchar(255) CHECK (VALUE LIKE '%_@_%')",
            f"CREATE DOMAIN {q(s)}.positive_amount AS numeric(12,2) CHECK (VALUE >= 0)",
        ]

    # Uneven schema sizes, as in real databases: a few big schemas, many small ones.
    weights = [rng.lognormvariate(0, 0.7) for _ in names]
    per_schema: dict[str, list[Table]] = {s: [] for s in names}
    used_names: dict[str, set[str]] = {s: set() for s in names}
    # Schemas of the four partition trees, chosen first so table names cannot take theirs.
    part_schemas = [names[rng.randrange(len(names))] for _ in range(4)]
    for s, root in zip(part_schemas, PARTITION_ROOTS, strict=True):
        used_names[s].add(root)
    planned: list[Table] = []
    for i in range(tables):
        schema = rng.choices(names, weights)[0]
        noun = TABLE_NOUNS[rng.randrange(len(TABLE_NOUNS))]
        if i % 997 == 500:  # ~0.1%: odd names that need quoting
            base = QUOTED_NAMES[(i // 997) % len(QUOTED_NAMES)]
        else:
            base = noun + TABLE_SUFFIXES[rng.randrange(len(TABLE_SUFFIXES))]
        name, n = base, 2
        while name in used_names[schema]:
            name = f"{base}_{n}"
            n += 1
        used_names[schema].add(name)
        t = _plan_table(rng, i, schema, name, noun, per_schema[schema], planned)
        per_schema[schema].append(t)
        planned.append(t)

    trees = _plan_partitioned(part_schemas, rng, partitions)

    foreign: list[str] = []
    n_foreign = max(2, tables // 500) if foreign_tables is None else foreign_tables
    if n_foreign and names:
        foreign += [
            f"CREATE FOREIGN DATA WRAPPER {q(FDW_NAME)}",  # no handler: catalog-only
            f"CREATE SERVER {q(FDW_SERVER)} FOREIGN DATA WRAPPER {q(FDW_NAME)}",
        ]
        for i in range(n_foreign):
            s = q(names[rng.randrange(len(names))])
            foreign.append(
                f"CREATE FOREIGN TABLE {s}.{q(f'remote_orders_{i:03d}')} (order_id bigint NOT NULL, "
                "customer_id bigint, amount numeric(12,2), placed_at timestamptz, note text) "
                f"SERVER {q(FDW_SERVER)} OPTIONS (table_name 'orders_{i}')"
            )
            if i % 2 == 0:
                foreign.append(
                    f"COMMENT ON FOREIGN TABLE {s}.{q(f'remote_orders_{i:03d}')} IS "
                    "'Orders in the legacy ERP, read through the FDW.'"
                )

    n_views = max(1, tables // 10) if tables else 0
    n_mat = max(1, tables // 200) if tables else 0
    views = _plan_views(rng, planned, n_views, False, []) if planned else []
    matviews = _plan_views(rng, planned, n_mat, True, views) if planned else []
    return Plan(names, setup, planned, trees, foreign, views, matviews)


def _view_ddl(v: View) -> list[str]:
    kind = "MATERIALIZED VIEW" if v.materialized else "VIEW"
    stmts = [f"CREATE {kind} {v.qname} AS {v.sql}"]
    if v.comment:
        stmts.append(f"COMMENT ON {kind} {v.qname} IS {lit(v.comment)}")
    return stmts


# --------------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------------


def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def _engine(url_or_engine: str | sa.URL | sa.Engine) -> tuple[sa.Engine, bool]:
    if isinstance(url_or_engine, sa.Engine):
        return url_or_engine, False
    url = url_or_engine
    if isinstance(url, str) and url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]  # plain libpq URL
    return sa.create_engine(url, poolclass=sa.pool.NullPool), True


@contextmanager
def autocommit_connection(url_or_engine: str | sa.URL | sa.Engine) -> Iterator[Any]:
    """The driver's own connection in autocommit mode, so that each multi-statement string
    is its own implicit transaction (and commits), whatever pool the engine has."""
    engine, own = _engine(url_or_engine)
    try:
        fairy = engine.raw_connection()
        # Set autocommit on the DBAPI connection itself: setting it on SQLAlchemy's pool
        # proxy silently does nothing, which made everything one big transaction.
        dbapi = fairy.driver_connection
        try:
            dbapi.autocommit = True  # type: ignore[union-attr]
            yield dbapi
        finally:
            with suppress(Exception):
                dbapi.autocommit = False  # type: ignore[union-attr]  # back to the pool as found
            fairy.close()
    finally:
        if own:
            engine.dispose()


def existing_generated_schemas(conn: Any) -> list[str]:
    cur = conn.cursor()
    cur.execute(
        "SELECT n.nspname FROM pg_namespace n JOIN pg_description d ON d.objoid = n.oid "
        "AND d.classoid = 'pg_namespace'::regclass WHERE d.description LIKE %s ORDER BY 1",
        (SCHEMA_MARKER + "%",),
    )
    return [r[0] for r in cur.fetchall()]


def drop_generated(url_or_engine: str | sa.URL | sa.Engine) -> int:
    """Drop every schema made by this generator (and the FDW); returns how many schemas."""
    with autocommit_connection(url_or_engine) as raw:
        names = existing_generated_schemas(raw)
        cur = raw.cursor()
        # DROP SCHEMA ... CASCADE of a schema with a thousand tables takes ~10 locks per
        # table in one transaction and overflows the default lock table, so drop the
        # relations in batches first (views first, then partition roots and tables).
        cur.execute(
            "SELECT c.relkind, format('%%I.%%I', n.nspname, c.relname) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%s) "
            "AND c.relkind IN ('v', 'm', 'f', 'p', 'r') AND NOT c.relispartition "
            "ORDER BY c.oid DESC",
            (names,),
        )
        kinds = {"v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE"}
        rels = cur.fetchall()
        for kind in ("v", "m", "f", "p", "r"):
            objs = [name for k, name in rels if k == kind]
            for chunk in _chunks(objs, 100):
                cur.execute(f"DROP {kinds.get(kind, 'TABLE')} IF EXISTS {', '.join(chunk)} CASCADE")
        for s in names:
            cur.execute(f"DROP SCHEMA IF EXISTS {q(s)} CASCADE")
        cur.execute(f"DROP SERVER IF EXISTS {q(FDW_SERVER)} CASCADE")
        cur.execute(f"DROP FOREIGN DATA WRAPPER IF EXISTS {q(FDW_NAME)} CASCADE")
        return len(names)


def generate_catalog(
    url_or_engine: str | sa.URL | sa.Engine,
    *,
    tables: int = 10_000,
    schemas: int = 50,
    seed: int = 1,
    drop_existing: bool = False,
    partitions: int = DEFAULT_PARTITIONS,
    foreign_tables: int | None = None,
    tables_per_transaction: int = DEFAULT_TABLES_PER_TRANSACTION,
    analyze: bool = True,
    log: Callable[[str], None] | None = None,
) -> CatalogStats:
    """Create the catalog in the database at ``url_or_engine`` and return what it holds.

    ``partitions`` is the number of leaf partitions of each of the four partition trees
    (0 for none); ``foreign_tables`` defaults to ``max(2, tables // 500)`` and needs a
    superuser (CREATE FOREIGN DATA WRAPPER).  Raises if generated schemas already exist,
    unless ``drop_existing``.  ``analyze`` runs ANALYZE on the grown system catalogs at the
    end, so readers are measured against a steady state rather than stale catalog stats.
    """
    if schemas < 1:
        raise ValueError("schemas must be >= 1")
    say = log or (lambda _msg: None)
    t0 = time.perf_counter()
    plan = plan_catalog(tables, schemas, seed, partitions, foreign_tables)
    phases: dict[str, float] = {"plan": time.perf_counter() - t0}
    stats_counts = {"statements": 0, "round_trips": 0}

    if drop_existing:
        t = time.perf_counter()
        dropped = drop_generated(url_or_engine)
        phases["drop_existing"] = time.perf_counter() - t
        say(f"dropped {dropped} existing generated schemas in {phases['drop_existing']:.1f}s")

    with autocommit_connection(url_or_engine) as raw:
        cur = raw.cursor()
        clash = [s for s in existing_generated_schemas(raw) if s in set(plan.schemas)]
        cur.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (plan.schemas,))
        clash = sorted({*clash, *(r[0] for r in cur.fetchall())})
        if clash:
            raise RuntimeError(
                f"{len(clash)} target schemas already exist (e.g. {clash[0]}); "
                "use --drop-existing / drop_existing=True"
            )
        # Commits are few, but there is no reason to wait for each WAL flush; and keep
        # NOTICEs (e.g. identifier truncation) out of the client.
        cur.execute("SET synchronous_commit = off; SET client_min_messages = warning")

        def send(stmts: list[str]) -> None:
            # One string, one round trip; a multi-statement simple query is one
            # implicit transaction, so each call is also one commit.
            cur.execute(";\n".join(stmts))
            stats_counts["statements"] += len(stmts)
            stats_counts["round_trips"] += 1

        def phase(name: str, batches: Iterator[list[str]]) -> None:
            t = time.perf_counter()
            for b in batches:
                if b:
                    send(b)
            phases[name] = time.perf_counter() - t
            say(f"{name}: {phases[name]:.2f}s")

        phase("schemas", iter([plan.setup]))
        # Partitions before the tables: every CREATE TABLE ... PARTITION OF seq-scans all
        # of pg_constraint (CloneFkReferenced; there is no index on confrelid), so the same
        # 491 partitions take ~0.7s in an empty database and ~3s after 10k tables.
        phase("partitioned", iter(plan.partitioned))
        phase("tables", (
            [s for t in chunk for s in _table_ddl(t)]
            for chunk in _chunks(plan.tables, tables_per_transaction)
        ))  # fmt: skip
        if plan.foreign:
            try:
                phase("foreign_tables", iter([plan.foreign]))
            except Exception as exc:  # e.g. not a superuser: the rest is still useful
                say(f"skipping foreign tables: {exc}".strip())
        views_per_tx = DEFAULT_VIEWS_PER_TRANSACTION  # ~3 locks per view
        phase("views", (
            [s for v in chunk for s in _view_ddl(v)]
            for chunk in _chunks(plan.views, views_per_tx)
        ))  # fmt: skip
        phase("materialized_views", (
            [s for v in chunk for s in _view_ddl(v)]
            for chunk in _chunks(plan.matviews, views_per_tx)
        ))  # fmt: skip
        if analyze:
            # The catalogs just grew ~100x; until autovacuum gets to them the planner works
            # from stats of an empty database and picks plans that are seconds slower (the
            # count below took 17s instead of 0.3s on PG16).  Production catalogs are
            # analyzed, so do what autovacuum would do soon anyway.
            phase("analyze", iter([[f"ANALYZE pg_catalog.{c}" for c in ANALYZED_CATALOGS]]))
        t = time.perf_counter()
        stats = count_catalog(raw, plan.schemas)
        phases["count"] = time.perf_counter() - t
    stats.seconds = time.perf_counter() - t0
    stats.phase_seconds = {k: round(v, 3) for k, v in phases.items()}
    stats.statements = stats_counts["statements"]
    stats.round_trips = stats_counts["round_trips"]
    return stats


def count_catalog(conn: Any, schemas: list[str]) -> CatalogStats:
    """Count what the given schemas hold, straight from pg_catalog (one query)."""
    cur = conn.cursor()
    cur.execute(
        """
        WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = ANY(%(s)s)),
        rel AS (SELECT c.* FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM ns))
        SELECT
          (SELECT count(*) FROM ns),
          (SELECT count(*) FROM rel WHERE relkind = 'r' AND NOT relispartition),
          (SELECT count(*) FROM rel WHERE relkind = 'p' AND NOT relispartition),
          (SELECT count(*) FROM rel WHERE relispartition AND relkind IN ('r', 'p', 'f')),
          (SELECT count(*) FROM rel WHERE relkind = 'v'),
          (SELECT count(*) FROM rel WHERE relkind = 'm'),
          (SELECT count(*) FROM rel WHERE relkind = 'f'),
          (SELECT count(*) FROM rel WHERE relkind = 'S'),
          (SELECT count(*) FROM rel WHERE relkind IN ('i', 'I')),
          (SELECT count(*) FROM pg_attribute a JOIN rel ON a.attrelid = rel.oid
            WHERE rel.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0
              AND NOT a.attisdropped),
          (SELECT count(*) FROM pg_constraint WHERE contype = 'p'
             AND conrelid IN (SELECT oid FROM rel)),
          (SELECT count(*) FROM pg_constraint WHERE contype = 'u'
             AND conrelid IN (SELECT oid FROM rel)),
          (SELECT count(*) FROM pg_constraint WHERE contype = 'f'
             AND conrelid IN (SELECT oid FROM rel)),
          (SELECT count(*) FROM pg_constraint WHERE contype = 'c'
             AND conrelid IN (SELECT oid FROM rel)),
          (SELECT count(*) FROM pg_description d JOIN rel ON d.objoid = rel.oid
             AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0),
          (SELECT count(*) FROM pg_description d JOIN rel ON d.objoid = rel.oid
             AND d.classoid = 'pg_class'::regclass AND d.objsubid > 0),
          (SELECT count(DISTINCT (r.ev_class, d.refobjid)) FROM pg_rewrite r
             JOIN rel ON rel.oid = r.ev_class
             JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
              AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class)
        """,
        {"s": list(schemas)},
    )
    row = cur.fetchone()
    names = [
        "schemas", "tables", "partitioned_tables", "partitions", "views", "materialized_views",
        "foreign_tables", "sequences", "indexes", "columns", "primary_keys",
        "unique_constraints", "foreign_keys", "check_constraints", "relation_comments",
        "column_comments", "view_dependencies",
    ]  # fmt: skip
    values: dict[str, Any] = {n: int(v) for n, v in zip(names, row, strict=True)}
    return CatalogStats(**values)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--url", required=True, help="SQLAlchemy or libpq URL of the target database")
    p.add_argument("--tables", type=int, default=10_000, help="ordinary tables (not partitions)")
    p.add_argument("--schemas", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS,
                   help="leaf partitions per partition tree (4 trees); 0 for none")  # fmt: skip
    p.add_argument("--foreign-tables", type=int, default=None)
    p.add_argument("--tables-per-transaction", type=int, default=DEFAULT_TABLES_PER_TRANSACTION)
    p.add_argument("--drop-existing", action="store_true",
                   help="first drop schemas made by an earlier run (marked by their comment)")  # fmt: skip
    p.add_argument("--drop-only", action="store_true", help="drop generated schemas and exit")
    p.add_argument("--no-analyze", action="store_true", help="skip ANALYZE of the catalogs")
    p.add_argument("--json", action="store_true", help="print the stats as JSON")
    args = p.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.drop_only:
        log(f"dropped {drop_generated(args.url)} generated schemas")
        return 0
    stats = generate_catalog(
        args.url, tables=args.tables, schemas=args.schemas, seed=args.seed,
        drop_existing=args.drop_existing, partitions=args.partitions,
        foreign_tables=args.foreign_tables, tables_per_transaction=args.tables_per_transaction,
        analyze=not args.no_analyze, log=log,
    )  # fmt: skip
    if args.json:
        print(json.dumps(asdict(stats), indent=2))
    else:
        for k, v in asdict(stats).items():
            print(f"{k:>20}: {v}")
        print(f"generated {stats.tables} tables in {stats.seconds:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
