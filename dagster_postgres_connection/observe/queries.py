"""The statements the sync and profile jobs send, named and written once.

Unlike `catalog/queries.py`, some of these open relations (`count(*)`, `pg_total_relation_size`)
and so wait on other sessions' locks: the callers run each of those alone, in its own short
transaction, under `lock_timeout`, and only for relations that changed.
"""

from collections.abc import Sequence

from sqlalchemy import Executable, func, literal, select, table, text, union_all

from dagster_postgres_connection.catalog.models import PostgresRelationKind

# Relations the sync measures, from `PostgresRelationKind` (their one home).
_MEASURED = PostgresRelationKind.relkinds_sql(k for k in PostgresRelationKind if k.is_measured)

# The tables, partitioned tables and materialized views of the given schemas (`roots`), and
# the leaf partitions under each (`tree`): walked through `pg_inherits`, since
# `pg_partition_tree` takes a lock. Shared by the two statements below.
_RELATION_TREES = f"""
    WITH RECURSIVE roots AS (
        SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind, c.relispopulated
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN {_MEASURED} AND n.nspname = ANY(:schemas)
    ),
    tree (root, relid, relkind) AS (
        SELECT oid, oid, relkind FROM roots
        UNION ALL
        SELECT t.root, i.inhrelid, k.relkind
        FROM tree t
        JOIN pg_inherits i ON i.inhparent = t.relid
        JOIN pg_class k ON k.oid = i.inhrelid
        WHERE t.relkind = 'p'
    )
"""

# What a data version is made of (`observe/versions.py`), per relation, its leaves summed:
# `changes`, rows inserted + updated + deleted since the statistics were reset
# (`pg_stat_user_tables.n_tup_ins + n_tup_upd + n_tup_del`); on a streaming standby, where
# replay counts no rows (`n_tup_*` stay 0), its replay position instead, so every relation
# moves when the standby replayed anything. `storage` changes when a table is truncated,
# rewritten or refreshed (new relfilenodes). Both statements below select these columns, and
# `_WITH_DATA_VERSION` hashes them into the version itself, here, in one place.
_VERSION_COLUMNS = """
        r.oid,
        r.schema,
        r.name,
        CASE WHEN pg_is_in_recovery()
            THEN pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint
            ELSE sum(
                pg_stat_get_tuples_inserted(leaf.oid) + pg_stat_get_tuples_updated(leaf.oid)
                + pg_stat_get_tuples_deleted(leaf.oid)
            )::bigint
        END AS changes,
        pg_is_in_recovery() AS in_recovery,
        md5(string_agg(leaf.relfilenode::text, ',' ORDER BY leaf.oid)) AS storage,
        (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()) AS stats_reset
"""



def _with_data_version(statement: str) -> str:
    """`statement` (selecting `_VERSION_COLUMNS`) with its rows' `data_version`: a hash of the
    oid, the storage, the changes and the statistics reset time. `pg1` names the recipe: a new
    recipe must not give a value an old one gave."""
    return f"""
    SELECT v.*, md5(concat_ws('|', 'pg1', v.oid::text, coalesce(v.storage, ''), coalesce(v.changes::text, ''),
                              coalesce(extract(epoch FROM v.stats_reset)::text, ''))) AS data_version
    FROM ({statement}) v
    """


# One row per table, partitioned table and materialized view of the given schemas, from the
# catalog and statistics only: nothing here takes a lock on a relation. The sync's statement:
# the version's columns, the estimates, and table health (`observe/health.py`).
RELATION_STATISTICS = text(
    _with_data_version(f"""
    {_RELATION_TREES}
    SELECT
        {_VERSION_COLUMNS},
        r.relkind,
        r.relispopulated AS populated,
        CASE WHEN max(leaf.reltuples) >= 0 THEN sum(greatest(leaf.reltuples, 0))::bigint END AS row_estimate,
        sum(st.n_live_tup)::bigint AS live_tuples,
        -- table health (observe/health.py): scans, dead tuples, maintenance; leaves summed
        sum(st.seq_scan)::bigint AS sequential_scans,
        sum(st.idx_scan)::bigint AS index_scans,  -- NULL: no index
        sum(st.n_dead_tup)::bigint AS dead_tuples,
        max(st.last_vacuum) AS last_vacuum,
        max(st.last_autovacuum) AS last_autovacuum,
        max(st.last_analyze) AS last_analyze,
        max(st.last_autoanalyze) AS last_autoanalyze,
        count(leaf.oid) AS leaf_count  -- scans a count(*) makes
    FROM roots r
    LEFT JOIN tree t ON t.root = r.oid AND t.relkind <> 'p'
    LEFT JOIN pg_class leaf ON leaf.oid = t.relid
    LEFT JOIN pg_stat_user_tables st ON st.relid = leaf.oid
    GROUP BY r.oid, r.schema, r.name, r.relkind, r.relispopulated
    """)
)

# The change sensor's statement: the version's columns only. Without `pg_stat_user_tables`,
# whose index-scan counts aggregate all of `pg_index`: 0.58 s -> ~0.1 s at 10,000 tables
# (benchmarks/README.md, "Change sensor").
RELATION_VERSIONS = text(
    _with_data_version(f"""
    {_RELATION_TREES}
    SELECT {_VERSION_COLUMNS}
    FROM roots r
    LEFT JOIN tree t ON t.root = r.oid AND t.relkind <> 'p'
    LEFT JOIN pg_class leaf ON leaf.oid = t.relid
    GROUP BY r.oid, r.schema, r.name
    """)
)

# Exact size of each relation with its TOAST table and indexes (of every leaf, for a
# partitioned table). Opens the relations: run under lock_timeout, in a short transaction.
TOTAL_SIZES = text(
    """
    SELECT
        r.oid,
        (SELECT COALESCE(sum(pg_total_relation_size(x.relid)), 0)::bigint
         FROM (SELECT r.oid AS relid UNION SELECT relid FROM pg_partition_tree(r.oid) WHERE isleaf) x
        ) AS size
    FROM unnest(CAST(:oids AS oid[])) AS r(oid)
    """
)


def row_counts(relations: Sequence[tuple[str, str]]) -> Executable:
    """`SELECT 0, count(*) FROM "schema"."name" UNION ALL ...`: the exact row count of each
    `(schema, name)`, by position; identifiers quoted by SQLAlchemy."""
    counts = [
        select(literal(position).label("position"), func.count().label("row_count")).select_from(
            table(name, schema=schema)
        )
        for position, (schema, name) in enumerate(relations)
    ]
    return counts[0] if len(counts) == 1 else union_all(*counts)
