"""Every raw pg_catalog statement we issue, named and written once.

They complement SQLAlchemy's Inspector where it has no batched call or would do wasted work:
relation kind/owner/privileges/size come from `pg_class`, and column types are spelled by
`format_type`, exactly as `psql \\d` shows them. Each runs once per database, whatever the
number of relations. Nothing here opens a relation (no `pg_relation_size`), and the deparse
functions, which do, are skipped for relations another session locks (`locked` below), so
nothing waits on another session's locks.
"""

from sqlalchemy import text

# System schemas are filtered here too, so their thousands of relations never cross the wire.
_NOT_SYSTEM_SCHEMA = """
    n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%'
    AND n.nspname NOT LIKE 'pg\\_temp\\_%'
"""

# Relations another session holds or awaits an ACCESS EXCLUSIVE lock on (ALTER TABLE, VACUUM
# FULL, REFRESH MATERIALIZED VIEW, ...). Reading pg_locks never waits, but the deparse functions
# (pg_get_viewdef, pg_get_expr, pg_get_partkeydef) take ACCESS SHARE locks on the relations they
# describe, a view's definition on every relation it reads: for locked ones we skip them (the
# reader warns) instead of waiting for `lock_timeout`.
_LOCKED_RELATIONS_CTE = """
    locked AS MATERIALIZED (
        SELECT DISTINCT l.relation AS oid
        FROM pg_locks l
        WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_backend_pid()
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    )
"""

LIST_DATABASES = text(
    """
    SELECT datname AS name, has_database_privilege(datname, 'CONNECT') AS can_connect
    FROM pg_database
    WHERE NOT datistemplate AND datallowconn
    ORDER BY datname
    """
)

SERVER_VERSION = text("SELECT current_setting('server_version') AS version")

# One row per table, partitioned table, view, materialized view and foreign table.
# size: pages of the heap, its TOAST table and its indexes, from the catalog (lock-free,
# as fresh as the last VACUUM/ANALYZE); NULL when never vacuumed or analyzed, and for views and
# partitioned parents, which have no storage of their own.
LIST_RELATIONS = text(
    f"""
    WITH {_LOCKED_RELATIONS_CTE}
    SELECT
        n.nspname AS schema,
        c.relname AS name,
        c.relkind AS relkind,
        pg_get_userbyid(c.relowner) AS owner,
        obj_description(c.oid, 'pg_class') AS comment,
        CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS row_estimate,
        CASE WHEN c.relkind IN ('v', 'p') OR c.relpages < 0 OR (c.reltuples < 0 AND c.relpages = 0) THEN NULL ELSE
            (c.relpages::bigint
             + COALESCE((SELECT t.relpages FROM pg_class t WHERE t.oid = c.reltoastrelid), 0)
             + COALESCE((SELECT sum(i.relpages) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                         WHERE x.indrelid = c.oid), 0)
            ) * current_setting('block_size')::bigint
        END AS size_bytes,
        has_schema_privilege(n.oid, 'USAGE') AS has_usage,
        has_table_privilege(c.oid, 'SELECT') AS has_select,
        lk.is_locked AS locked_by_other_session,
        CASE WHEN c.relkind IN ('v', 'm') AND NOT lk.is_locked THEN pg_get_viewdef(c.oid) END AS view_definition
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL (
        SELECT c.oid IN (SELECT oid FROM locked) OR (c.relkind IN ('v', 'm') AND EXISTS (
            SELECT 1 FROM pg_rewrite r
            JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
            WHERE r.ev_class = c.oid AND d.refclassid = 'pg_class'::regclass
              AND d.refobjid IN (SELECT oid FROM locked)
        )) AS is_locked
    ) lk
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND {_NOT_SYSTEM_SCHEMA}
    ORDER BY n.nspname, c.relname
    """
)

# Columns of every relation in the given schemas, in table order.
LIST_COLUMNS = text(
    f"""
    WITH {_LOCKED_RELATIONS_CTE}
    SELECT
        n.nspname AS schema,
        c.relname AS relation,
        a.attname AS name,
        format_type(a.atttypid, a.atttypmod) AS type,
        NOT a.attnotnull AS nullable,
        CASE WHEN c.oid NOT IN (SELECT oid FROM locked) THEN pg_get_expr(d.adbin, d.adrelid) END AS "default",
        col_description(c.oid, a.attnum) AS comment
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND n.nspname = ANY(:schemas)
    ORDER BY n.nspname, c.relname, a.attnum
    """
)
