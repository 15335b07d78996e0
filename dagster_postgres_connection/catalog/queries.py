"""Every pg_catalog statement of the catalog read, named and written once (the access room's
are in `access/queries.py`, the fingerprint's in `fingerprint.py`).

They stand in for SQLAlchemy's Inspector where it has no batched call or its batched calls cost
more (`get_multi_*` sends statements per schema; keys come from `LIST_KEYS` instead):
relation kind/owner/privileges/size come from `pg_class`, and column types are spelled by
`format_type`, exactly as `psql \\d` shows them. Each runs once per database, whatever the
number of relations. Nothing here opens a relation (no `pg_relation_size`), and the deparse
functions, which do, are skipped for relations another session locks (`locked` below), so
nothing waits on another session's locks.
"""

from sqlalchemy import text

from dagster_postgres_connection.catalog.models import PostgresRelationKind


# System schemas are filtered here too, so their thousands of relations never cross the wire.
def _not_system_schema(alias: str) -> str:
    return f"""
    {alias}.nspname NOT IN ('pg_catalog', 'information_schema')
    AND {alias}.nspname NOT LIKE 'pg\\_toast%'
    AND {alias}.nspname NOT LIKE 'pg\\_temp\\_%'
"""


NOT_SYSTEM_SCHEMA = _not_system_schema("n")

# Relations another session holds or awaits an ACCESS EXCLUSIVE lock on (ALTER TABLE, VACUUM
# FULL, REFRESH MATERIALIZED VIEW, ...). Reading pg_locks never waits, but the deparse functions
# (pg_get_viewdef, pg_get_expr, pg_get_partkeydef) take ACCESS SHARE locks on the relations they
# describe, a view's definition on every relation it reads: for locked ones we skip them (the
# reader warns) instead of waiting for `lock_timeout`. `:vanished` adds relations dropped since
# our snapshot was taken, which the deparse functions can no longer find (statements using this
# run through `connection.execute_despite_drops`, which fills it in).
_LOCKED_RELATIONS_CTE = """
    locked AS MATERIALIZED (
        SELECT held.oid FROM (
            SELECT l.relation AS oid
            FROM pg_locks l
            WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_backend_pid()
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            OFFSET 0  -- not flattened: the flag below is set only when a lock is held
        ) held
        -- Something may be left out of this read: its fingerprint must not vouch for it
        -- (fingerprint.CATALOG_FINGERPRINT reads the flag at the end of the transaction).
        WHERE set_config('dpc.catalog_incomplete', 'on', true) IS NOT NULL
        UNION
        SELECT unnest(CAST(:vanished AS oid[]))
        UNION
        -- Evaluated before any deparse call: from here on a lock wait lasts at most
        -- :deparse_lock_wait, far below deadlock_timeout, so a DDL statement racing us is never
        -- the deadlock victim (execute_despite_drops releases our locks and retries instead).
        -- It lasts for the rest of the transaction; later statements only read pg_catalog.
        SELECT NULL::oid WHERE set_config('lock_timeout', :deparse_lock_wait, true) IS NULL
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

# The relkinds of relation kinds, from `PostgresRelationKind` (their one home).
RELATIONS = PostgresRelationKind.relkinds_sql()  # every kind that is an asset
_VIEWS = PostgresRelationKind.relkinds_sql(k for k in PostgresRelationKind if k.is_view)
_TABLES = PostgresRelationKind.relkinds_sql(k for k in PostgresRelationKind if not k.is_view)

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
        ds.description AS comment,
        CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS row_estimate,
        CASE WHEN c.relkind IN ('v', 'p') OR c.relpages < 0 OR (c.reltuples < 0 AND c.relpages = 0) THEN NULL ELSE
            (c.relpages::bigint + COALESCE(t.relpages, 0) + COALESCE(ix.pages, 0)) * current_setting('block_size')::bigint
        END AS size_bytes,
        has_schema_privilege(n.oid, 'USAGE') AS has_usage,
        has_table_privilege(c.oid, 'SELECT') AS has_select,
        lk.is_locked AS locked_by_other_session,
        CASE WHEN c.relkind IN {_VIEWS} AND NOT lk.is_locked THEN pg_get_viewdef(c.oid) END AS view_definition,
        c.relispartition AS is_partition,
        CASE WHEN c.relispartition AND NOT lk.is_locked THEN pg_get_expr(c.relpartbound, c.oid) END AS partition_bound,
        CASE WHEN c.relkind = 'p' AND NOT lk.is_locked THEN pg_get_partkeydef(c.oid) END AS partition_key
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    -- obj_description(c.oid, 'pg_class') per row is a SQL function call and an index probe each
    -- (a deeper index at 50k tables); joined, the comments are hashed once (as LIST_COLUMNS does)
    LEFT JOIN pg_description ds ON ds.objoid = c.oid AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = 0
    -- the TOAST table's and the indexes' pages, hash-joined rather than looked up per relation
    -- (an index probe of pg_class each, one level deeper at 50k tables; OFFSET 0: planned on
    -- their own, so the planner cannot turn them back into probes, as it did at 50k tables)
    LEFT JOIN (SELECT t.oid, t.relpages FROM pg_class t WHERE t.relkind = 't' OFFSET 0) t ON t.oid = c.reltoastrelid
    LEFT JOIN (
        SELECT x.indrelid, sum(i.relpages) AS pages
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid AND i.relkind IN ('i', 'I')
        GROUP BY x.indrelid
    ) ix ON ix.indrelid = c.oid
    CROSS JOIN LATERAL (
        SELECT c.oid IN (SELECT oid FROM locked) OR (c.relkind IN {_VIEWS} AND EXISTS (
            SELECT 1 FROM pg_rewrite r
            JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
            WHERE r.ev_class = c.oid AND d.refclassid = 'pg_class'::regclass
              AND d.refobjid IN (SELECT oid FROM locked)
        )) AS is_locked
    ) lk
    WHERE c.relkind IN {RELATIONS}
      AND {NOT_SYSTEM_SCHEMA}
    -- no ORDER BY: the reader sorts by (schema, name) (rows with view definitions spilled 14 MB
    -- at 50k tables); `name` sorts in the C collation, as Python compares str
    """
)

# Columns of every relation in the given schemas, with their position (attnum). No ORDER BY:
# at 50k tables the sort of ~760k wide rows spilled ~200 MB to disk (40 MB at 10k) for an order
# the reader restores per relation in Python (`columns.ColumnBuilder`), exactly (attnum is an int).
# Enum labels are aggregated once per enum type and hash-joined, and comments joined: a
# correlated subquery or `col_description` per column costs ~40 us each, 6 s at 150k columns.
# Defaults are looked up only for columns that have one (`atthasdef`, ~1 in 8), by index.
LIST_COLUMNS = text(
    f"""
    WITH {_LOCKED_RELATIONS_CTE},
    enums AS MATERIALIZED (
        SELECT enumtypid, array_agg(enumlabel ORDER BY enumsortorder) AS labels
        FROM pg_enum GROUP BY enumtypid
    )
    -- After schema, relation and position, the columns are the fields of `PostgresColumn`, in
    -- its order (`models.COLUMN_FIELDS`), so the reader builds each record straight from the row.
    SELECT
        n.nspname AS schema,
        c.relname AS relation,
        a.attnum AS position,
        a.attname AS name,
        format_type(a.atttypid, a.atttypmod) AS type,
        NOT a.attnotnull AS nullable,
        -- pg_attrdef also holds a generated column's expression: that is not a default. A default
        -- cannot refer to columns, so it is deparsed without its relation (relid 0): the table
        -- is then neither opened nor locked (opening ~35k tables cost 4 s at 50k tables).
        CASE WHEN a.atthasdef AND a.attgenerated = '' THEN (
            SELECT pg_get_expr(d.adbin, 0) FROM pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum
        ) END AS "default",
        ds.description AS comment,
        -- labels of an enum, an array of enums or a domain over an enum
        COALESCE(e.labels, ea.labels, ed.labels, '{{}}') AS enum_labels,
        CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS domain_base_type,
        CASE a.attidentity WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END AS identity,
        CASE a.attgenerated WHEN 's' THEN 'STORED' WHEN 'v' THEN 'VIRTUAL' END AS generated,  -- v: PG 18
        -- a generation expression refers to columns: deparsed with its relation, unless locked
        CASE WHEN a.atthasdef AND a.attgenerated <> '' AND c.oid NOT IN (SELECT oid FROM locked) THEN (
            SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum
        ) END AS generation_expression
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_description ds ON ds.objoid = a.attrelid AND ds.classoid = 'pg_class'::regclass
        AND ds.objsubid = a.attnum AND ds.objsubid > 0
    LEFT JOIN enums e ON e.enumtypid = t.oid
    LEFT JOIN enums ea ON ea.enumtypid = t.typelem
    LEFT JOIN enums ed ON ed.enumtypid = t.typbasetype
    WHERE a.attnum > 0 AND NOT a.attisdropped
      AND c.relkind IN {RELATIONS}
      AND n.nspname = ANY(:schemas)
    """
)

# --- The full object model: lineage, partitions, indexes, constraints, foreign tables --------
# (catalog/lineage.py, catalog/partitions.py, catalog/details.py). One statement each per database.

# What every view and materialized view reads, from the dependencies Postgres records for its
# rewrite rule: one row per relation read (`column` NULL) and per column read. Functions,
# types and sequences a view uses are other classes or kinds and drop out; system relations too.
# Every relation outside the system schemas is read once with its schema's name (`rel`) and
# hashed: both the views (the selected schemas are never system ones: they come from
# LIST_RELATIONS) and what they read are found there, rather than by an index probe of pg_class
# and one of pg_namespace per dependency (28k each at 50k tables, one B-tree level deeper than
# at 10k) and a nested loop of every dependency over every selected schema.
LIST_VIEW_DEPENDENCIES = text(
    f"""
    WITH rel AS MATERIALIZED (
        SELECT c.oid, c.relname, c.relkind, n.nspname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN {RELATIONS} AND {NOT_SYSTEM_SCHEMA}
    )
    SELECT DISTINCT
        v.nspname AS schema, v.relname AS name,  -- the view
        r.nspname AS ref_schema, r.relname AS ref_name, a.attname AS ref_column  -- what it reads
    FROM rel v
    JOIN pg_rewrite w ON w.ev_class = v.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid
        AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid
    JOIN rel r ON r.oid = d.refobjid
    LEFT JOIN pg_attribute a ON d.refobjsubid > 0 AND a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
    WHERE v.relkind IN {_VIEWS} AND v.nspname = ANY(:schemas)
    ORDER BY 1, 2, 3, 4, 5
    """
)

# Partitions and legacy inheritance children with their direct parent (pg_inherits), in every
# non-system schema: a partition's root may sit in a schema that is not selected.
LIST_INHERITANCE = text(
    f"""
    SELECT
        n.nspname AS schema,
        c.relname AS name,
        pn.nspname AS parent_schema,
        p.relname AS parent_name,
        c.relispartition AS is_partition
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid AND c.relkind IN {_TABLES}
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_namespace pn ON pn.oid = p.relnamespace
    WHERE {NOT_SYSTEM_SCHEMA}
    ORDER BY n.nspname, c.relname, i.inhseqno
    """
)

# Indexes of tables and materialized views: key columns (or expressions) as Postgres prints them,
# their order (DESC, NULLS FIRST), INCLUDE columns, a partial index's predicate, the definition.
# MATERIALIZED keeps the filter on the deparsed text out of the join: pushed into the scan of
# pg_index, its unknown selectivity made the planner nest loops (4 s at 1,800 indexes).
#
# pg_get_indexdef costs ~60 us an index on a fresh connection (4.3 s of 4.5 at 50k tables,
# growing faster than the catalog). Most indexes are plain: key columns only, each with its
# type's default operator class and the column's collation, no options, expressions, predicate,
# INCLUDE or NULLS NOT DISTINCT, on a plain table. For those the definition is spelled here, in
# pg_get_indexdef's words (`CREATE [UNIQUE ]INDEX name ON schema.table USING am (a, b)`, every
# name through quote_ident like its quote_identifier); every other index is deparsed by it.
# `test_index_definitions_match_pg_get_indexdef` holds the two to the same text.
LIST_INDEXES = text(
    f"""
    WITH {_LOCKED_RELATIONS_CTE},
    ix AS MATERIALIZED (
    SELECT
        c.nspname AS schema,
        c.relname AS relation,
        i.relname AS name,
        keys.columns,
        keys.orderings,
        -- INCLUDE columns (never expressions), as pg_get_indexdef prints them
        CASE WHEN x.indnatts > x.indnkeyatts THEN ARRAY(
            SELECT (SELECT quote_ident(a.attname) FROM pg_attribute a
                    WHERE a.attrelid = x.indrelid AND a.attnum = x.indkey[k - 1])
            FROM generate_series(x.indnkeyatts + 1, x.indnatts) AS k ORDER BY k
        ) ELSE '{{}}' END AS include_columns,
        -- a partial index's WHERE, spelled as the Inspector's `postgresql_where` (and pg_get_indexdef)
        CASE WHEN x.indpred IS NOT NULL THEN pg_get_expr(x.indpred, x.indrelid) END AS predicate,
        x.indnullsnotdistinct AS nulls_not_distinct,
        x.indisunique AS is_unique,
        x.indisprimary AS is_primary,
        am.amname AS method,
        CASE WHEN keys.plain AND x.indexprs IS NULL AND x.indpred IS NULL AND x.indnatts = x.indnkeyatts
                  AND NOT x.indnullsnotdistinct AND i.reloptions IS NULL AND i.relkind = 'i'
            THEN 'CREATE ' || CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX '
                 || quote_ident(i.relname) || ' ON ' || quote_ident(c.nspname) || '.' || quote_ident(c.relname)
                 || ' USING ' || quote_ident(am.amname) || ' (' || array_to_string(keys.columns, ', ') || ')'
            ELSE pg_get_indexdef(x.indexrelid)
        END AS definition
    FROM pg_index x
    -- The indexes and the tables of the selected schemas, each read by one scan of pg_class and
    -- hash-joined (OFFSET 0: planned on their own, never probed per index): two index probes of
    -- pg_class per index, the table's for every index of the database (TOAST tables' too), cost
    -- 660k buffer accesses at 50k tables, one B-tree level deeper than at 10k.
    JOIN (
        SELECT i.oid, i.relname, i.relam, i.relkind, i.reloptions FROM pg_class i
        JOIN pg_namespace ni ON ni.oid = i.relnamespace  -- an index lives in its table's schema
        WHERE i.relkind IN ('i', 'I') AND ni.nspname = ANY(:schemas) OFFSET 0
    ) i ON i.oid = x.indexrelid
    JOIN pg_am am ON am.oid = i.relam
    JOIN (
        SELECT c.oid, c.relname, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname = ANY(:schemas) OFFSET 0  -- what has indexes
    ) c ON c.oid = x.indrelid
    CROSS JOIN LATERAL (
        SELECT
            -- a plain key column as pg_get_indexdef(index, k, true) prints it (quote_ident of its
            -- name), an expression deparsed by it
            array_agg(CASE WHEN x.indkey[k - 1] <> 0 THEN quote_ident(a.attname)
                           ELSE pg_get_indexdef(x.indexrelid, k, true) END ORDER BY k) AS columns,
            -- per key column, its order where not the default, in pg_get_indexdef's words
            -- (indoption bits: 1 DESC, 2 NULLS FIRST; always 0 for methods without order)
            array_agg(CASE x.indoption[k - 1] & 3 WHEN 1 THEN 'DESC NULLS LAST' WHEN 2 THEN 'NULLS FIRST'
                           WHEN 3 THEN 'DESC' ELSE '' END ORDER BY k) AS orderings,
            bool_and(COALESCE(
                x.indkey[k - 1] <> 0 AND x.indoption[k - 1] = 0
                AND x.indcollation[k - 1] IN (0, a.attcollation)
                -- the default operator class of the column's type (an uncorrelated IN: hashed once)
                AND (x.indclass[k - 1], a.atttypid, i.relam) IN (
                    SELECT o.oid, o.opcintype, o.opcmethod FROM pg_opclass o WHERE o.opcdefault
                ),
                false)) AS plain
        FROM generate_series(1, x.indnkeyatts) AS k
        -- one index probe per key column (OFFSET 0: not turned into a join that hashes every
        -- column of the table, 1.3 s at 50k tables)
        LEFT JOIN LATERAL (
            SELECT a.attname, a.attcollation, a.atttypid FROM pg_attribute a
            WHERE a.attrelid = x.indrelid AND a.attnum = x.indkey[k - 1] OFFSET 0
        ) a ON true
    ) keys
    -- pg_get_indexdef waits on a locked table or index (see _LOCKED_RELATIONS_CTE)
    WHERE x.indrelid NOT IN (SELECT oid FROM locked) AND x.indexrelid NOT IN (SELECT oid FROM locked)
    )
    SELECT * FROM ix
    -- an index dropped since our snapshot deparses to NULL: it is gone, leave it out
    WHERE ix.definition IS NOT NULL AND array_position(ix.columns, NULL) IS NULL
    -- No ORDER BY: the reader orders each relation's indexes by name (a sort of every index
    -- spilled 28 MB at 50k tables); `name` sorts in the C collation, as Python compares str.
    """
)


def _column_names(attnums: str, relid: str) -> str:
    """Names of a constraint's columns, in key order, from pg_attribute (the snapshot's view)."""
    # One index probe per key column (a join read every column of the table, ~20 at 50k tables).
    return f"""ARRAY(SELECT (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = {relid} AND a.attnum = u.attnum)
              FROM unnest({attnums}) WITH ORDINALITY AS u(attnum, ord) ORDER BY u.ord)"""


# Foreign keys of tables in the given schemas, from the snapshot alone: column names come from
# pg_attribute rather than pg_get_constraintdef, which looks a dropped table up "as of now".
LIST_FOREIGN_KEYS = text(
    f"""
    SELECT
        n.nspname AS schema,
        c.relname AS relation,
        k.conname AS name,
        rn.nspname AS referred_schema,
        rc.relname AS referred_table,
        {_column_names("k.conkey", "k.conrelid")} AS columns,
        {_column_names("k.confkey", "k.confrelid")} AS referred_columns
    FROM pg_constraint k
    JOIN pg_namespace n ON n.oid = k.connamespace  -- a table's constraints live in its schema
    -- (the kinds only make the hashes smaller: tables are ~1/5 of pg_class, beside their TOAST
    -- tables, indexes and sequences)
    JOIN pg_class c ON c.oid = k.conrelid AND c.relkind IN {_TABLES}
    JOIN pg_class rc ON rc.oid = k.confrelid AND rc.relkind IN {_TABLES}
    JOIN pg_namespace rn ON rn.oid = rc.relnamespace
    WHERE k.contype = 'f' AND n.nspname = ANY(:schemas)
    -- no ORDER BY: the reader orders each table's constraints by name (see LIST_INDEXES)
    """
)

# Primary keys ('p') and unique constraints ('u') of tables in the given schemas, columns in key
# order, from the snapshot alone (pg_attribute, like LIST_FOREIGN_KEYS).
LIST_KEYS = text(
    f"""
    SELECT
        n.nspname AS schema,
        c.relname AS relation,
        k.conname AS name,
        k.contype AS type,
        {_column_names("k.conkey", "k.conrelid")} AS columns
    FROM pg_constraint k
    JOIN pg_namespace n ON n.oid = k.connamespace  -- a table's constraints live in its schema
    JOIN pg_class c ON c.oid = k.conrelid AND c.relkind IN {_TABLES}  -- (see LIST_FOREIGN_KEYS)
    WHERE k.contype IN ('p', 'u') AND n.nspname = ANY(:schemas)
    -- no ORDER BY: the reader orders each table's constraints by name (see LIST_INDEXES)
    """
)

# Check ('c') and exclusion ('x') constraints; keys come from LIST_KEYS. Deparsing a check
# constraint locks its table, so those of locked tables are left out.
LIST_CHECK_AND_EXCLUSION_CONSTRAINTS = text(
    f"""
    WITH {_LOCKED_RELATIONS_CTE}
    SELECT
        n.nspname AS schema,
        c.relname AS relation,
        k.conname AS name,
        k.contype AS type,
        pg_get_constraintdef(k.oid, true) AS definition
    FROM pg_constraint k
    JOIN pg_namespace n ON n.oid = k.connamespace  -- a table's constraints live in its schema
    JOIN pg_class c ON c.oid = k.conrelid AND c.relkind IN {_TABLES}  -- (see LIST_FOREIGN_KEYS)
    WHERE k.contype IN ('c', 'x') AND n.nspname = ANY(:schemas)
      AND c.oid NOT IN (SELECT oid FROM locked)
    -- no ORDER BY: the reader orders each table's constraints by name (see LIST_INDEXES)
    """
)

# Server and wrapper of each foreign table with the server's and the table's options. User
# mappings (where passwords live) are deliberately not read.
LIST_FOREIGN_TABLES = text(
    """
    SELECT
        n.nspname AS schema,
        c.relname AS relation,
        s.srvname AS server,
        w.fdwname AS wrapper,
        s.srvoptions AS server_options,
        ft.ftoptions AS table_options
    FROM pg_foreign_table ft
    JOIN pg_class c ON c.oid = ft.ftrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_foreign_server s ON s.oid = ft.ftserver
    JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
    WHERE n.nspname = ANY(:schemas)
    ORDER BY n.nspname, c.relname
    """
)

# --- Access: who may read each relation (catalog/security.py) ----------------------------------
# Not the connecting role's own privileges (`access/`): every role's, as catalog metadata.

# The roles granted SELECT on each relation of the given schemas (`PUBLIC` for everyone), from
# its ACL (NULL: the owner's default privileges), the roles granted SELECT on some of its columns
# only (`GRANT SELECT (a, b)`, in pg_attribute's ACLs), and its row-level security flags. Direct
# grants only: members of a granted role (role inheritance) are not expanded.
LIST_RELATION_ACCESS = text(
    f"""
    WITH column_grants AS MATERIALIZED (
        -- the few columns with an ACL of their own, found in one pass over pg_attribute
        SELECT g.attrelid, json_object_agg(g.grantee, g.columns) AS grants
        FROM (
            SELECT a.attrelid,
                   CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END AS grantee,
                   array_agg(a.attname ORDER BY a.attnum) AS columns
            FROM pg_attribute a
            CROSS JOIN LATERAL aclexplode(a.attacl) x
            WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped AND x.privilege_type = 'SELECT'
            GROUP BY 1, 2
        ) g
        GROUP BY g.attrelid
    )
    SELECT
        n.nspname AS schema,
        c.relname AS name,
        ARRAY(
            SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
            FROM aclexplode(COALESCE(c.relacl, acldefault('r', c.relowner))) a
            WHERE a.privilege_type = 'SELECT'
        ) AS select_grantees,
        cg.grants AS column_select_grants,
        c.relrowsecurity AS row_security,
        c.relforcerowsecurity AS force_row_security
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN column_grants cg ON cg.attrelid = c.oid
    WHERE c.relkind IN {RELATIONS} AND n.nspname = ANY(:schemas)
    """
)

# Row-level security policies of relations in the given schemas (pg_policy, as `pg_policies`
# shows them). Deparsing an expression locks its table: those of locked tables come without
# their expressions (the reader warns about locked relations).
LIST_POLICIES = text(
    f"""
    WITH {_LOCKED_RELATIONS_CTE}
    SELECT
        n.nspname AS schema,
        c.relname AS relation,
        p.polname AS name,
        CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                      WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS command,
        p.polpermissive AS permissive,
        ARRAY(
            SELECT CASE WHEN r.oid = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r.oid) END
            FROM unnest(p.polroles) AS r(oid)
        ) AS roles,
        CASE WHEN c.oid NOT IN (SELECT oid FROM locked) THEN pg_get_expr(p.polqual, p.polrelid) END AS using_expression,
        CASE WHEN c.oid NOT IN (SELECT oid FROM locked) THEN pg_get_expr(p.polwithcheck, p.polrelid) END AS check_expression
    FROM pg_policy p
    JOIN pg_class c ON c.oid = p.polrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(:schemas)
    -- no ORDER BY: the reader orders each relation's policies by name (see LIST_INDEXES)
    """
)


# --- Routines (catalog/routines.py): functions, procedures and the triggers that run them -----
# One statement each per database, whatever the number of routines.

# Functions and procedures of every non-system schema (the reader applies the schema filters),
# without aggregates and window functions (no body to read) and without routines that belong to
# an extension (pg_depend 'e': `CREATE EXTENSION` made them, e.g. pgcrypto's). The body is read
# only for `sql` and `plpgsql`, the languages whose statements we parse; a `BEGIN ATOMIC` SQL
# body (PG 14+) is stored parsed, in prosqlbody, and deparsed by pg_get_function_sqlbody.
LIST_ROUTINES = text(
    f"""
    SELECT
        n.nspname AS schema,
        p.proname AS name,
        p.oid AS oid,
        CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END AS kind,
        pg_get_function_identity_arguments(p.oid) AS arguments,
        CASE WHEN p.prokind <> 'p' THEN pg_get_function_result(p.oid) END AS return_type,
        l.lanname AS language,
        CASE WHEN p.prokind <> 'p' THEN
            CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END
        END AS volatility,
        p.prosecdef AS security_definer,
        pg_get_userbyid(p.proowner) AS owner,
        obj_description(p.oid, 'pg_proc') AS comment,
        p.proconfig AS config,
        has_schema_privilege(n.oid, 'USAGE') AS has_usage,
        CASE WHEN l.lanname IN ('sql', 'plpgsql') THEN
            CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) ELSE p.prosrc END
        END AS body
    FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    JOIN pg_language l ON l.oid = p.prolang
    WHERE p.prokind IN ('f', 'p')
      AND {NOT_SYSTEM_SCHEMA}
      AND NOT EXISTS (
          SELECT 1 FROM pg_depend d
          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
      )
    -- no ORDER BY: the reader sorts by schema, name and arguments
    """
)

# User triggers (not those Postgres makes for foreign keys) and the table that fires each.
# tgtype bits (pg_trigger.h): 1 row, 2 before, 4 insert, 8 delete, 16 update, 32 truncate, 64 instead.
LIST_TRIGGERS = text(
    f"""
    SELECT
        t.tgfoid AS routine_oid,
        t.tgname AS name,
        n.nspname AS schema,
        c.relname AS "table",
        CASE WHEN t.tgtype & 64 <> 0 THEN 'INSTEAD OF' WHEN t.tgtype & 2 <> 0 THEN 'BEFORE' ELSE 'AFTER' END AS timing,
        array_remove(ARRAY[
            CASE WHEN t.tgtype & 4 <> 0 THEN 'INSERT' END,
            CASE WHEN t.tgtype & 16 <> 0 THEN 'UPDATE' END,
            CASE WHEN t.tgtype & 8 <> 0 THEN 'DELETE' END,
            CASE WHEN t.tgtype & 32 <> 0 THEN 'TRUNCATE' END
        ], NULL) AS events,
        CASE WHEN t.tgtype & 1 <> 0 THEN 'ROW' ELSE 'STATEMENT' END AS level,
        t.tgenabled <> 'D' AS enabled
    FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT t.tgisinternal
      AND t.tgparentid = 0  -- a partitioned table's trigger, not its clones on each partition
      AND {NOT_SYSTEM_SCHEMA}
    -- no ORDER BY: the reader orders each routine's triggers
    """
)
