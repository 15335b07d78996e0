"""Has anything we display changed since the last snapshot? One statement per database says.

A sync that finds nothing changed should cost almost nothing: before the full catalog read, we
ask each database for the fingerprint of its catalog (`CATALOG_FINGERPRINT`, below) and compare
it with the one the snapshot was read with. Equal everywhere: the snapshot stands, nothing is
read or rewritten. Anything unknown or different: the full read runs, as before.

Why catalog rows and their `xmin`, and not a hash of what we display: computing what we display
*is* the full read (deparsing views, defaults and indexes is most of its cost). Every DDL
statement inserts, updates or deletes rows of the system catalogs, and a row written by another
transaction carries that transaction's id in `xmin`, which is never rewritten (freezing keeps
it). So a checksum over (identity, xmin) of the catalog rows a snapshot is built from changes
whenever one of them does, including a DROP (a row fewer). What the statement covers, per row:

- relations (`pg_class`, every kind of object users created (OID >= 16384), sequences and
  indexes too, as defaults and definitions name them, and TOAST tables, whose pages count in a
  size), columns (`pg_attribute`: names, types, NOT NULL, identity,
  generated), defaults (`pg_attrdef`), keys and constraints (`pg_constraint`, NOT NULL ones on
  PG 18 too), indexes (`pg_index`), view and materialized view rules (`pg_rewrite`: `CREATE OR
  REPLACE VIEW` rewrites it; their dependencies in `pg_depend` are written with it), comments
  (`pg_description`), types and enum labels (`pg_type`, `pg_enum`), inheritance and partitioning
  (`pg_inherits`, `pg_partitioned_table`, the bound lives in `pg_class`), foreign tables, servers
  and wrappers, schemas (`pg_namespace`), row-level security policies (`pg_policy`; the RLS
  flags and SELECT grants are in the `pg_class` row);
- what deparsing prints by name: functions, operators, collations, operator classes, text search
  configurations and dictionaries in user schemas, access methods, role names (owners);
- readability: ACLs live in the `pg_class`/`pg_namespace` rows (GRANT and REVOKE rewrite them);
  superuser and inheritance come from `pg_roles` (`pg_authid` is not readable: its values are
  hashed instead of its `xmin`), memberships from `pg_auth_members`; CONNECT on databases is
  checked by `_same_databases` (the list of databases is resolved again, and a database that
  refuses us fails the check);
- values VACUUM and ANALYZE update in place, without a new `xmin`: `reltuples` and `relpages` of
  every relation and of TOAST tables, the row estimate and size we display, are hashed as values;
- the server version, `search_path` (deparsing qualifies names by it) and the connecting role; in
  Python: this package's version, the snapshot format and the text of the reader's statements (a
  new reader reads more), the selection (`databases`, `filters`), host, port and connection name.

Design choices:
- A sum of 64-bit row hashes (`hashtextextended`, seeded with the catalog and the row's identity)
  rather than `md5(string_agg(... ORDER BY ...))`: no sort, so nothing spills at 50k tables, and a
  change goes unnoticed only if two sums collide (about 2^-64).
- The whole database (every user object), not only the selected relations: a relation outside the
  selection still shows in what we display (a foreign key's target, a view's dependency, a
  partition counted into its root), and selection rules are regexes the server cannot apply.
  DDL outside the selection causes a full read: safe, never a missed change.
- Temporary schemas are left out: sessions creating temporary tables would otherwise make every
  sync a full read. User objects are told apart by OID (>= 16384, FirstNormalObjectId) rather
  than by joining each catalog with the set of user relations: at 50k tables hashing those 143k
  OIDs once per catalog spilled to disk and cost 10x the 10k time instead of 5x.
- During a full read, the fingerprint is read in the same REPEATABLE READ transaction, after
  everything else: all of it comes from the transaction's snapshot, so it describes exactly the
  catalog state the snapshot was read from (the deparse functions and privilege checks look "as of
  now", later than the snapshot: whatever they saw that the fingerprint did not, the next check
  sees as a change, which only costs a full read). A read that left something out because another
  session held a lock (`queries._LOCKED_RELATIONS_CTE` flags it) stores no fingerprint, so the next
  sync reads again and fills it in.
- Row counts and sizes change with every VACUUM/ANALYZE of a busy table, and we display them: on
  such a database a sync reads fully (today's cost), and the fast path is for quiet catalogs.

Known limits, accepted: a change that alters no catalog row we hash (e.g. `ALTER ROLE ... SET
search_path` for another role) cannot be seen; `xmin` values are reused only after 2^32
transactions, and a reuse would also need the same row identity.

Cost, measured (PG 18, `benchmarks/generate_catalog.py`, wall time of the statement): 0.22 s at
10k tables (472k catalog rows hashed), 1.0 s at 50k (2.3M rows); the full read of the same
catalogs takes ~4 s and ~25 s.
"""

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, TextClause, text

from dagster_postgres_connection.catalog import queries
from dagster_postgres_connection.catalog.connection import (
    catalog_transaction,
    create_catalog_engine,
)
from dagster_postgres_connection.catalog.models import SNAPSHOT_FORMAT_VERSION
from dagster_postgres_connection.catalog.summary import SnapshotSummary
from dagster_postgres_connection.config import PostgresConnectionSettings
from dagster_postgres_connection.errors import PostgresConnectionError
from dagster_postgres_connection.version import __version__


# --- The statement: one per database, whatever the number of relations ---------------------
def _row_hashes(catalog: str, identity: str, where: str = "") -> str:
    """One 64-bit hash per row of `catalog`: its xmin (new on every insert and update), seeded
    with the catalog and the row's identity, so the same (identity, xmin) in two catalogs differs."""
    return f"""SELECT hashtextextended(xmin::text, ('{catalog}'::regclass::oid::bigint << 40) # ({identity})) AS h
        FROM {catalog} {where}"""


# Objects created by users (OIDs from FirstNormalObjectId on: nothing initdb made) outside
# temporary schemas. No join with the set of user relations: at 50k tables hashing its 143k
# OIDs for each catalog spilled to disk; the temporary relations to rule out are few.
def _user_object(oid: str, namespace: str | None = None) -> str:
    return f"WHERE {oid} >= 16384 AND {oid} NOT IN (SELECT oid FROM temp_rel)" if namespace is None else (
        f"WHERE {oid} >= 16384 AND {namespace} NOT IN (SELECT oid FROM temp_ns)"
    )


# Catalogs hashed row by row: (catalog, the row's identity, which rows).
_HASHED_CATALOGS = (
    ("pg_attribute", "attrelid::bigint << 16 | attnum", _user_object("attrelid") + " AND attnum > 0"),
    ("pg_attrdef", "oid::bigint", _user_object("adrelid")),
    ("pg_index", "indexrelid::bigint", _user_object("indrelid")),
    ("pg_rewrite", "oid::bigint", _user_object("ev_class")),
    ("pg_constraint", "oid::bigint", _user_object("oid", "connamespace")),
    ("pg_type", "oid::bigint", _user_object("oid", "typnamespace")),
    ("pg_description", "objoid::bigint << 24 # classoid::bigint << 8 # objsubid::bigint", ""),
    ("pg_enum", "oid::bigint", ""),
    ("pg_inherits", "inhrelid::bigint << 8 # inhparent::bigint # inhseqno::bigint", ""),
    ("pg_partitioned_table", "partrelid::bigint", ""),
    ("pg_foreign_table", "ftrelid::bigint", ""),
    ("pg_foreign_server", "oid::bigint", ""),
    ("pg_foreign_data_wrapper", "oid::bigint", ""),
    ("pg_am", "oid::bigint", ""),
    ("pg_policy", "oid::bigint", ""),  # row-level security policies (catalog/security.py)
    ("pg_proc", "oid::bigint", _user_object("oid", "pronamespace")),
    ("pg_trigger", "oid::bigint", _user_object("tgrelid")),  # triggers that run routines (routines.py)
    ("pg_operator", "oid::bigint", _user_object("oid", "oprnamespace")),
    ("pg_collation", "oid::bigint", _user_object("oid", "collnamespace")),
    ("pg_opclass", "oid::bigint", _user_object("oid", "opcnamespace")),
    ("pg_ts_config", "oid::bigint", _user_object("oid", "cfgnamespace")),
    ("pg_ts_dict", "oid::bigint", _user_object("oid", "dictnamespace")),
)
_HASHED_CATALOG_ROWS = "\n        UNION ALL\n        ".join(_row_hashes(*catalog) for catalog in _HASHED_CATALOGS)


# A checksum of every catalog row a snapshot is built from, for objects of users (temporary ones
# excluded: they churn): relations with their in-place counters (reltuples, relpages, also of
# TOAST tables and indexes), columns, defaults, keys and constraints, indexes, view rules,
# comments, types and enum labels, inheritance and partitioning, foreign tables, routines and their triggers, plus the names
# deparsing prints (functions, operators, collations, operator classes, text search objects,
# roles) and what decides readability (ACLs live in the pg_class/pg_namespace rows; role
# attributes and memberships). Order-free (a sum of hashes: no sort). All of it reads the
# transaction's snapshot, whichever statement of the transaction runs it.
CATALOG_FINGERPRINT = text(
    f"""
    WITH temp_ns AS MATERIALIZED (
        SELECT oid FROM pg_namespace WHERE nspname LIKE 'pg\\_temp\\_%' OR nspname LIKE 'pg\\_toast\\_temp\\_%'
    ),
    temp_rel AS MATERIALIZED (
        SELECT oid FROM pg_class WHERE relnamespace IN (SELECT oid FROM temp_ns)
    ),
    hashes AS (
        -- every schema but temporary ones (`public` predates user objects)
        {_row_hashes("pg_namespace", "oid::bigint", "WHERE oid NOT IN (SELECT oid FROM temp_ns)")}
        UNION ALL
        SELECT hashtextextended(concat_ws(',', xmin, relpages, reltuples), oid::bigint) FROM pg_class
        {_user_object("oid", "relnamespace")}
        UNION ALL
        {_HASHED_CATALOG_ROWS}
        UNION ALL
        -- pg_authid is not readable by the role: pg_roles shows what decides ownership names
        -- and privileges (superuser, inheritance), and pg_auth_members the memberships.
        SELECT hashtextextended(concat_ws(',', rolname, rolsuper, rolinherit), oid::bigint) FROM pg_roles
        UNION ALL
        SELECT hashtextextended(m::text, m.xmin::text::bigint) FROM pg_auth_members m
    )
    SELECT
        count(*) AS row_count,
        sum(h) AS checksum,
        current_setting('server_version') AS server_version,
        current_setting('search_path') AS search_path,
        current_user AS role,
        -- set by _LOCKED_RELATIONS_CTE when a statement of this transaction skipped a locked relation
        COALESCE(current_setting('dpc.catalog_incomplete', true), '') = 'on' AS incomplete
    FROM hashes
    """
)


# The text of every statement the reader may send: a reader that reads differently (even within
# one package version, as during development) never vouches for a snapshot an older one wrote.
_READER_SQL = hashlib.sha256(
    "\n".join(
        [f"{name}\n{clause.text}" for name, clause in sorted(vars(queries).items()) if isinstance(clause, TextClause)]
        + [CATALOG_FINGERPRINT.text]
    ).encode()
).hexdigest()


def read_fingerprint(conn: Connection) -> str:
    """The catalog's fingerprint, read in `conn`'s transaction; `""` when this transaction's read
    left something out (a relation locked by another session), so that it vouches for nothing."""
    row = conn.execute(CATALOG_FINGERPRINT).one()
    if row.incomplete:
        return ""
    payload = [
        __version__,
        SNAPSHOT_FORMAT_VERSION,
        _READER_SQL,
        row.row_count,
        str(row.checksum),
        row.server_version,
        row.search_path,
        row.role,
    ]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CatalogCheck:
    """The answer of `check_unchanged`: `unchanged`, or `reason` says what differs."""

    unchanged: bool
    reason: str
    statement_count: int
    seconds: float


def check_unchanged(settings: PostgresConnectionSettings, summary: SnapshotSummary | None) -> CatalogCheck:
    """Whether a full read of `settings`' catalog would give the snapshot `summary` describes.

    One statement per database (plus the list of databases when `databases` is not configured),
    stopping at the first difference. Never raises for a database problem: a database that cannot
    be reached or read means "read it fully", and the full read reports the problem properly.
    """
    # Here, not at the top: the reader imports this module (it stores `read_fingerprint`'s answer).
    from dagster_postgres_connection.catalog.reader import resolve_databases, selection_fingerprint

    started = time.perf_counter()
    statements = 0

    def answer(unchanged: bool, reason: str) -> CatalogCheck:
        return CatalogCheck(unchanged, reason, statements, round(time.perf_counter() - started, 3))

    if summary is None:
        return answer(False, "no previous snapshot")
    if summary.format_version != SNAPSHOT_FORMAT_VERSION:
        return answer(False, f"the snapshot has format {summary.format_version}")
    if (summary.connection_name, summary.host, summary.port) != (settings.name, settings.host, settings.port):
        return answer(False, "the snapshot is of another connection, host or port")
    if summary.selection_fingerprint != selection_fingerprint(settings):
        return answer(False, "`databases` or `filters` changed")
    if settings.query_history:  # usage moves without any catalog change
        return answer(False, "`query_history` is read at every sync")
    unknown = sorted(name for name, fingerprint in summary.catalog_fingerprints.items() if not fingerprint)
    if unknown or not summary.catalog_fingerprints:
        return answer(False, f"no fingerprint stored for database(s) {', '.join(f'`{n}`' for n in unknown)}")
    try:
        skipped: list[Any] = []
        databases, statements = resolve_databases(settings, skipped)
        if sorted(databases) != sorted(summary.catalog_fingerprints) or sorted(
            s.database for s in skipped
        ) != sorted(summary.skipped_databases):
            return answer(False, "the list of databases or CONNECT privileges changed")
        for database in databases:
            engine, counter = create_catalog_engine(settings, database)
            try:
                with catalog_transaction(engine, settings, database) as conn:
                    fingerprint = read_fingerprint(conn)
            finally:
                statements += counter.count
                engine.dispose()
            if fingerprint != summary.catalog_fingerprints[database]:
                return answer(False, f"the catalog of `{database}` changed")
    except PostgresConnectionError as error:
        return answer(False, f"the check failed ({error})")
    return answer(True, "no catalog change since the snapshot")
