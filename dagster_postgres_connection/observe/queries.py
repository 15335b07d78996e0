"""The statements the sync and profile jobs send, named and written once.

Unlike `catalog/queries.py`, some of these open relations (`count(*)`, `pg_total_relation_size`)
and so wait on other sessions' locks: the callers run each of those alone, in its own short
transaction, under `lock_timeout`, and only for relations that changed.
"""

from typing import Any

from sqlalchemy import Select, func, select, table, text

# One row per table, partitioned table and materialized view of the given schemas, from the
# catalog and statistics only: nothing here takes a lock on a relation (`pg_partition_tree`
# would, so partitions are walked through `pg_inherits`). A partitioned table sums its leaf
# partitions. `changes` counts inserted + updated + deleted rows since the statistics were
# reset; `storage` changes when a table is truncated, rewritten or refreshed (new relfilenode).
RELATION_STATISTICS = text(
    """
    WITH RECURSIVE roots AS (
        SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind, c.relispopulated
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname = ANY(:schemas)
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
    SELECT
        r.oid,
        r.schema,
        r.name,
        r.relkind,
        r.relispopulated AS populated,
        CASE WHEN max(leaf.reltuples) >= 0 THEN sum(greatest(leaf.reltuples, 0))::bigint END AS row_estimate,
        sum(st.n_tup_ins + st.n_tup_upd + st.n_tup_del)::bigint AS changes,
        sum(st.n_live_tup)::bigint AS live_tuples,
        md5(string_agg(leaf.relfilenode::text, ',' ORDER BY leaf.oid)) AS storage,
        (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()) AS stats_reset
    FROM roots r
    LEFT JOIN tree t ON t.root = r.oid AND t.relkind <> 'p'
    LEFT JOIN pg_class leaf ON leaf.oid = t.relid
    LEFT JOIN pg_stat_user_tables st ON st.relid = leaf.oid
    GROUP BY r.oid, r.schema, r.name, r.relkind, r.relispopulated
    """
)

# Exact size of a relation with its TOAST table and indexes (of every leaf, for a partitioned
# table). Opens the relations: run alone, under lock_timeout.
TOTAL_SIZE = text(
    """
    SELECT COALESCE(sum(pg_total_relation_size(r.oid)), 0)::bigint
    FROM (
        SELECT CAST(:oid AS oid) AS oid
        UNION
        SELECT relid FROM pg_partition_tree(CAST(:oid AS oid)) WHERE isleaf
    ) r
    """
)


def exact_row_count(schema: str, name: str) -> Select[Any]:
    """`SELECT count(*) FROM "schema"."name"`, identifiers quoted by SQLAlchemy."""
    return select(func.count()).select_from(table(name, schema=schema))

