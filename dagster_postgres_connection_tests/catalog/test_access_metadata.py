"""Who may read each relation, as catalog metadata: SELECT grantees (PUBLIC included), row-level
security flags and policies, for every role (not only the connecting one, which `access/` checks).

References: `has_table_privilege(role, relation, 'SELECT')` for the grantees and the `pg_policies`
view for the policies, asked on the same server.
"""

import secrets
from collections.abc import Iterator

import pytest
from psycopg2 import sql

from dagster_postgres_connection import PostgresMetadataSet
from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot, PostgresPolicy
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.catalog.helpers import (
    database_with,
    key,
    read,
    relation,
    specs_by_key,
)
from dagster_postgres_connection_tests.conftest import READER_ROLE
from dagster_postgres_connection_tests.utils import PgTarget

SUFFIX = secrets.token_hex(3)
ANALYST, APP = f"analyst_{SUFFIX}", f"app_{SUFFIX}"  # roles are cluster-wide: unique per run

DDL = f"""
CREATE SCHEMA crm;
CREATE TABLE crm.account (id int PRIMARY KEY, tenant_id int NOT NULL, region text, owner_name text);
ALTER TABLE crm.account ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.account FORCE ROW LEVEL SECURITY;
CREATE POLICY by_region ON crm.account FOR SELECT TO {ANALYST}, {APP}
    USING (region = current_setting('app.region', true));
CREATE POLICY tenant_only ON crm.account AS RESTRICTIVE FOR ALL TO {APP}
    USING (tenant_id = 1) WITH CHECK (tenant_id = 1 AND owner_name = CURRENT_USER);
CREATE TABLE crm.country (code text PRIMARY KEY, name text);
ALTER TABLE crm.country ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone_reads ON crm.country FOR SELECT USING (true);
CREATE TABLE crm.audit (id int);
CREATE VIEW crm.account_names AS SELECT id, owner_name FROM crm.account;
GRANT SELECT, INSERT ON crm.account TO {ANALYST};
GRANT SELECT ON crm.account TO {APP};
GRANT SELECT ON crm.country TO PUBLIC;
GRANT INSERT ON crm.audit TO {APP};  -- not SELECT: not a reader
GRANT SELECT ON crm.account_names TO {ANALYST};
GRANT SELECT (id, region) ON crm.account TO PUBLIC;  -- some columns only
GRANT SELECT (owner_name), UPDATE (region) ON crm.account TO {ANALYST};  -- already granted the whole table
"""


@pytest.fixture(name="crm", scope="module")
def crm_fixture(pagila_server: EmbeddedPostgres, pagila: PgTarget) -> Iterator[PgTarget]:
    pagila_server.execute(sql.SQL("CREATE ROLE {}; CREATE ROLE {}").format(sql.Identifier(ANALYST), sql.Identifier(APP)))
    try:
        with database_with(pagila_server, "access_fixture", DDL, "crm") as target:
            yield target
    finally:
        pagila_server.execute(sql.SQL("DROP ROLE {}; DROP ROLE {}").format(sql.Identifier(ANALYST), sql.Identifier(APP)))


@pytest.fixture(name="snapshot", scope="module")
def snapshot_fixture(crm: PgTarget) -> PostgresCatalogSnapshot:
    return read(crm)


def test_select_grantees_are_the_roles_postgres_lets_select(
    snapshot: PostgresCatalogSnapshot, crm: PgTarget, pagila_server: EmbeddedPostgres
) -> None:
    expected = {
        "account": ["postgres", ANALYST, APP, READER_ROLE],
        "country": ["PUBLIC", "postgres", READER_ROLE],
        "audit": ["postgres", READER_ROLE],
        "account_names": ["postgres", ANALYST, READER_ROLE],
    }
    for name, grantees in expected.items():
        assert list(relation(snapshot, "crm", name).select_grantees) == sorted(
            grantees, key=lambda role: (role != "PUBLIC", role)
        ), name
    # Column grants: PUBLIC may read two columns of account; the analyst's column grant adds
    # nothing to its grant of the whole table.
    assert dict(relation(snapshot, "crm", "account").column_select_grants) == {"PUBLIC": ["id", "region"]}
    assert dict(relation(snapshot, "crm", "country").column_select_grants) == {}
    (columns_readable,) = pagila_server.query(
        "SELECT has_column_privilege('public', 'crm.account', 'region', 'SELECT')", database=crm.database
    )[0]
    assert columns_readable is True
    # Postgres agrees, role by role: every grantee may SELECT; a role granted nothing may not,
    # unless PUBLIC may.
    for name, grantees in expected.items():
        for role in (ANALYST, APP):
            (allowed,) = pagila_server.query(
                "SELECT has_table_privilege(%s, %s, 'SELECT')", [role, f"crm.{name}"], database=crm.database
            )[0]
            assert allowed == (role in grantees or "PUBLIC" in grantees), (name, role)


def test_row_level_security_and_policies_match_pg_policies(
    snapshot: PostgresCatalogSnapshot, crm: PgTarget, pagila_server: EmbeddedPostgres
) -> None:
    account, country, audit = (relation(snapshot, "crm", name) for name in ("account", "country", "audit"))
    assert (account.row_security, account.force_row_security) == (True, True)
    assert (country.row_security, country.force_row_security) == (True, False)
    assert (audit.row_security, audit.force_row_security, list(audit.policies)) == (False, False, [])

    reference = pagila_server.query(
        """SELECT tablename, policyname, permissive, roles::text[], cmd, qual, with_check
           FROM pg_policies WHERE schemaname = 'crm'""",
        database=crm.database,
    )
    theirs = {
        (table, name): (permissive == "PERMISSIVE", sorted(roles, key=lambda r: (r != "public", r)), command, using, check)
        for table, name, permissive, roles, command, using, check in reference
    }
    ours = {
        (table.name, policy.name): (
            policy.permissive,
            [role.lower() if role == "PUBLIC" else role for role in policy.roles],
            policy.command,
            policy.using,
            policy.with_check,
        )
        for table in (account, country)
        for policy in table.policies
    }
    assert ours == theirs
    assert list(account.policies) == [
        PostgresPolicy(
            name="by_region", command="SELECT", permissive=True, roles=sorted([ANALYST, APP]),
            using="(region = current_setting('app.region'::text, true))",
        ),
        PostgresPolicy(
            name="tenant_only", command="ALL", permissive=False, roles=[APP],
            using="(tenant_id = 1)", with_check="((tenant_id = 1) AND (owner_name = CURRENT_USER))",
        ),
    ]
    assert [(p.name, list(p.roles)) for p in country.policies] == [("everyone_reads", ["PUBLIC"])]


def test_access_metadata_keys(snapshot: PostgresCatalogSnapshot, crm: PgTarget) -> None:
    specs = specs_by_key(crm, snapshot)
    account = PostgresMetadataSet.extract(specs[key(crm, "crm", "account")].metadata)
    analyst, app = sorted([ANALYST, APP])
    assert account.select_grantees == ", ".join(sorted(["postgres", ANALYST, APP, READER_ROLE])) + ", PUBLIC (columns id, region)"
    assert account.row_security == "enabled, forced"
    assert (account.policies or "").splitlines() == [
        f"by_region: PERMISSIVE FOR SELECT TO {analyst}, {app} USING (region = current_setting('app.region'::text, true))",
        f"tenant_only: RESTRICTIVE FOR ALL TO {APP} USING (tenant_id = 1) "
        "WITH CHECK ((tenant_id = 1) AND (owner_name = CURRENT_USER))",
    ]
    country = PostgresMetadataSet.extract(specs[key(crm, "crm", "country")].metadata)
    assert country.select_grantees == "PUBLIC, " + ", ".join(sorted(["postgres", READER_ROLE]))
    assert country.row_security == "enabled"
    assert country.policies == "everyone_reads: PERMISSIVE FOR SELECT TO PUBLIC USING true"
    audit = PostgresMetadataSet.extract(specs[key(crm, "crm", "audit")].metadata)
    assert (audit.row_security, audit.policies) == (None, None)  # off: no keys
