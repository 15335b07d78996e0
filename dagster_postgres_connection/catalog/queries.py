"""Every raw pg_catalog statement we issue, named and written once.

They complement SQLAlchemy's Inspector where it has no batched call or would do wasted work:
relation kind/owner/privileges/size come from `pg_class`, and column types are spelled by
`format_type`, exactly as `psql \\d` shows them. Each runs once per database, whatever the
number of relations. Nothing here opens a relation (no `pg_relation_size`), so nothing waits
on another session's locks.
"""

from sqlalchemy import text

# System schemas are filtered here too, so their thousands of relations never cross the wire.
_NOT_SYSTEM_SCHEMA = """
    n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%'
    AND n.nspname NOT LIKE 'pg\\_temp\\_%'
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
        CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS view_definition
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND {_NOT_SYSTEM_SCHEMA}
    ORDER BY n.nspname, c.relname
    """
)

# Columns of every relation in the given schemas, in table order.
LIST_COLUMNS = text(
    """
    SELECT
        n.nspname AS schema,
        c.relname AS relation,
        a.attname AS name,
        format_type(a.atttypid, a.atttypmod) AS type,
        NOT a.attnotnull AS nullable,
        pg_get_expr(d.adbin, d.adrelid) AS "default",
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
