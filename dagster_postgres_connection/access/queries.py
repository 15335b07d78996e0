"""The statements of the access room: what the connecting role may read, write and will read.

Each runs once per server or per database, whatever the number of objects. The has_*_privilege
functions answer for the connecting role, through role membership and PUBLIC grants.
"""

from sqlalchemy import text

from dagster_postgres_connection.catalog.queries import NOT_SYSTEM_SCHEMA, RELATIONS

# The connecting role's attributes, and membership in the predefined roles that read or write
# everything (looked up by name: they exist from PostgreSQL 14 on).
ROLE_ATTRIBUTES = text(
    """
    SELECT
        current_user AS role,
        r.rolsuper AS is_superuser,
        r.rolcreaterole AS can_create_role,
        r.rolcreatedb AS can_create_database,
        r.rolbypassrls AS bypasses_rls,
        EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'pg_write_all_data'
                AND pg_has_role(current_user, g.oid, 'USAGE')) AS writes_all_data
    FROM pg_roles r
    WHERE r.rolname = current_user
    """
)

# Every database of the server (pg_database is shared: any database answers for all).
DATABASE_PRIVILEGES = text(
    """
    SELECT
        datname AS name,
        datistemplate AS is_template,
        datallowconn AS allows_connections,
        has_database_privilege(oid, 'CONNECT') AS can_connect,
        has_database_privilege(oid, 'CREATE') AS can_create
    FROM pg_database
    ORDER BY datname
    """
)

SCHEMA_PRIVILEGES = text(
    f"""
    SELECT
        n.nspname AS schema,
        pg_get_userbyid(n.nspowner) AS owner,
        has_schema_privilege(n.oid, 'USAGE') AS has_usage,
        has_schema_privilege(n.oid, 'CREATE') AS can_create
    FROM pg_namespace n
    WHERE {NOT_SYSTEM_SCHEMA}
    ORDER BY n.nspname
    """
)

# Relations the reader syncs (r, p, v, m, f) plus sequences (S), with SELECT and write privileges.
RELATION_PRIVILEGES = text(
    f"""
    SELECT
        n.nspname AS schema,
        c.relname AS name,
        c.relkind AS relkind,
        pg_get_userbyid(c.relowner) AS owner,
        CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'SELECT')
             ELSE has_table_privilege(c.oid, 'SELECT') END AS has_select,
        CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'UPDATE')
             ELSE has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') END AS can_write
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE (c.relkind IN {RELATIONS} OR c.relkind = 'S')  -- and sequences
      AND {NOT_SYSTEM_SCHEMA}
    ORDER BY n.nspname, c.relname
    """
)

# Default privileges that give the connecting role (directly, through a role it belongs to, or
# through PUBLIC) SELECT on tables created later by `creator`; `schema` is NULL for entries
# that apply to every schema.
DEFAULT_SELECT_GRANTS = text(
    """
    SELECT DISTINCT pg_get_userbyid(d.defaclrole) AS creator, n.nspname AS schema
    FROM pg_default_acl d
    LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
    CROSS JOIN LATERAL aclexplode(d.defaclacl) AS a
    WHERE d.defaclobjtype = 'r'
      AND a.privilege_type = 'SELECT'
      AND CASE WHEN a.grantee = 0 THEN true
               ELSE pg_has_role(current_user, a.grantee, 'USAGE') END
    """
)
