"""`check`'s verdict: what the filters select but the role cannot read, with the GRANTs that fix it.

Errors are gaps in what the configuration selects today (no CONNECT, no USAGE, no SELECT); they
make `check` fail. Warnings are about tomorrow and about safety: default privileges that would
leave future tables unreadable, sequences without SELECT, and anything that lets the role
write. Fixes are exact statements for the connecting role (see `grants.py`).
"""

from collections.abc import Sequence
from typing import Literal

from dagster_shared.record import record

from dagster_postgres_connection.access import grants
from dagster_postgres_connection.access.privileges import (
    DatabaseInspection,
    DatabasePrivileges,
    PrivilegeInspection,
    RelationAccess,
    RoleAttributes,
    SchemaAccess,
)
from dagster_postgres_connection.access.readability import Readability
from dagster_postgres_connection.catalog._records import compile_record_constructors
from dagster_postgres_connection.catalog.selection import select_relation, select_schema
from dagster_postgres_connection.config import PostgresConnectionSettings

Severity = Literal["error", "warning"]


@record
class PrivilegeFinding:
    """One gap or risk. `fix` runs in `database` (None: in any database)."""

    severity: Severity
    subject: str  # what it is about, e.g. "schema `pagila.sales`"
    message: str
    database: str | None = None
    fix: Sequence[str] = ()


@record
class PrivilegeReport:
    role: str
    findings: Sequence[PrivilegeFinding]
    selected_relations: int  # selected by the filters, in databases that could be inspected
    readable_relations: int

    @property
    def ok(self) -> bool:
        """True when everything the filters select is readable (warnings allowed)."""
        return not any(finding.severity == "error" for finding in self.findings)

    def fix_script(self) -> list[str]:
        """Every fix, for psql: database-independent ones first, then per database after `\\connect`."""
        lines = [line for finding in self.findings if finding.database is None for line in finding.fix]
        databases = dict.fromkeys(f.database for f in self.findings if f.database is not None and f.fix)
        for database in databases:
            assert database is not None
            lines.append(grants.connect_line(database))
            lines += [line for finding in self.findings if finding.database == database for line in finding.fix]
        return lines


def assess_privileges(inspection: PrivilegeInspection, settings: PostgresConnectionSettings) -> PrivilegeReport:
    """Turns an inspection into findings: errors for what the filters select but the role cannot
    read, warnings for future tables, sequences and anything that lets the role write."""
    role = inspection.role.role
    findings = _role_findings(inspection.role)
    selected = readable = 0
    for database in inspection.databases:
        if not database.decision:
            continue
        if database.privileges is None:
            findings.append(_unreadable_database_finding(database, role))
            continue
        database_findings, database_selected, database_readable = _database_findings(
            database.name, database.privileges, settings, inspection.role
        )
        if database.access.can_create:
            database_findings.append(
                PrivilegeFinding(
                    severity="warning", subject=f"database `{database.name}`", database=database.name,
                    message=f"role `{role}` may CREATE schemas in it: a catalog reader should be read-only.",
                )
            )
        findings += database_findings
        selected += database_selected
        readable += database_readable
    return PrivilegeReport(role=role, findings=findings, selected_relations=selected, readable_relations=readable)


def _role_findings(attributes: RoleAttributes) -> list[PrivilegeFinding]:
    role = attributes.role
    risks = [
        (attributes.is_superuser, "is a superuser: it reads everything, but can also change or drop anything"),
        (attributes.writes_all_data, "is a member of `pg_write_all_data`: it can write every table"),
        (attributes.can_create_role, "has CREATEROLE"),
        (attributes.can_create_database, "has CREATEDB"),
        (attributes.bypasses_rls, "has BYPASSRLS"),
    ]
    return [
        PrivilegeFinding(
            severity="warning", subject=f"role `{role}`",
            message=f"role `{role}` {what}. Connect with a read-only role instead: "
            f"`dagster-postgres-connection grant-sql --role dagster_reader --database <db>` prints its recipe.",
        )
        for risky, what in risks
        if risky
    ]


def _unreadable_database_finding(database: DatabaseInspection, role: str) -> PrivilegeFinding:
    access, subject = database.access, f"database `{database.name}`"
    if not access.exists:
        message = f"database `{database.name}` does not exist on the server: fix `databases`."
        return PrivilegeFinding(severity="error", subject=subject, message=message)
    if not access.allows_connections:
        message = f"database `{database.name}` does not allow connections (datallowconn is off): remove it from `databases`."
        return PrivilegeFinding(severity="error", subject=subject, message=message)
    if not access.can_connect:
        return PrivilegeFinding(
            severity="error", subject=subject,
            message=f"role `{role}` lacks CONNECT on database `{database.name}` (its schemas are checked once it has it).",
            fix=[grants.grant_connect(database.name, role)],
        )
    return PrivilegeFinding(severity="error", subject=subject, message=str(database.error))


def _database_findings(
    database: str, privileges: DatabasePrivileges, settings: PostgresConnectionSettings, attributes: RoleAttributes
) -> tuple[list[PrivilegeFinding], int, int]:
    role = attributes.role
    findings: list[PrivilegeFinding] = []
    selected_count = readable_count = 0
    relations_by_schema: dict[str, list[RelationAccess]] = {}
    for relation in privileges.relations:
        relations_by_schema.setdefault(relation.schema, []).append(relation)

    for schema in privileges.schemas:
        if not select_schema(settings.filters, schema.schema):
            continue
        where = f"{database}.{schema.schema}"
        everything = relations_by_schema.get(schema.schema, [])
        relations = [r for r in everything if r.kind is not None]
        sequences = [r for r in everything if r.kind is None]
        selected = [r for r in relations if _is_selected(settings, database, r)]
        lacking = [r for r in selected if not r.has_select]  # to fix, whatever the schema's USAGE
        selected_count += len(selected)
        readable_count += sum(r.readability(schema.has_usage) is Readability.READABLE for r in selected)

        if not schema.has_usage:
            findings.append(
                PrivilegeFinding(
                    severity="error" if selected else "warning", subject=f"schema `{where}`", database=database,
                    message=f"role `{role}` lacks USAGE on schema `{where}`"
                    + (f", so none of its {len(selected)} selected relations can be read." if selected
                       else ": tables created there later would not be readable."),
                    fix=[grants.grant_usage(schema.schema, role)],
                )
            )
        if lacking:
            all_lacking = len(lacking) == len(relations)
            findings.append(
                PrivilegeFinding(
                    severity="error", subject=f"schema `{where}`", database=database,
                    message=f"role `{role}` lacks SELECT on {len(lacking)} selected relation(s) of `{where}`: "
                    + _names(lacking),
                    fix=[grants.grant_select_on_all_tables(schema.schema, role) if all_lacking
                         else grants.grant_select(schema.schema, [r.name for r in lacking], role)],
                )
            )
        lacking_sequences = [s for s in sequences if not s.has_select]
        if lacking_sequences:
            findings.append(
                PrivilegeFinding(
                    severity="warning", subject=f"schema `{where}`", database=database,
                    message=f"role `{role}` lacks SELECT on {len(lacking_sequences)} sequence(s) of `{where}`: "
                    + _names(lacking_sequences),
                    fix=[grants.grant_select_on_all_sequences(schema.schema, role)
                         if len(lacking_sequences) == len(sequences)
                         else grants.grant_select(schema.schema, [s.name for s in lacking_sequences], role, sequences=True)],
                )
            )
        if not attributes.is_superuser:
            findings += _default_privilege_findings(database, schema, selected, privileges, role)
        findings += _write_findings(database, schema, selected, role)
    return findings, selected_count, readable_count


def _is_selected(settings: PostgresConnectionSettings, database: str, relation: RelationAccess) -> bool:
    kind = relation.kind
    return kind is not None and select_relation(settings.filters, database, relation.schema, relation.name, kind).included


def _default_privilege_findings(
    database: str, schema: SchemaAccess, selected: Sequence[RelationAccess], privileges: DatabasePrivileges, role: str
) -> list[PrivilegeFinding]:
    # Future tables are created by whoever creates today's: their owners, else the schema owner
    # (`pg_database_owner` is a placeholder no one creates tables as).
    creators = dict.fromkeys(r.owner for r in selected) or dict.fromkeys([schema.owner])
    where = f"{database}.{schema.schema}"
    return [
        PrivilegeFinding(
            severity="warning", subject=f"schema `{where}`", database=database,
            message=f"default privileges do not give role `{role}` SELECT on tables that `{creator}` "
            f"creates in `{where}` later: they would be skipped until granted.",
            fix=[grants.alter_default_privileges(schema.schema, role, creator)],
        )
        for creator in creators
        if creator not in (role, "pg_database_owner")
        and not privileges.covers_future_tables(creator, schema.schema)
    ]


def _write_findings(
    database: str, schema: SchemaAccess, selected: Sequence[RelationAccess], role: str
) -> list[PrivilegeFinding]:
    where = f"{database}.{schema.schema}"
    findings = []
    if schema.can_create:
        # The privilege may be the role's own or PUBLIC's: Pagila's dump runs `GRANT ALL ON SCHEMA
        # public TO PUBLIC`, as PostgreSQL did for `public` before 15. Both REVOKEs are harmless
        # when the grant is not there; the PUBLIC one is explained, as it affects every role.
        findings.append(
            PrivilegeFinding(
                severity="warning", subject=f"schema `{where}`", database=database,
                message=f"role `{role}` may CREATE objects in schema `{where}`: a catalog reader should be read-only. "
                f"The REVOKEs below fix it, from PUBLIC too if PUBLIC holds the privilege (Pagila grants ALL on "
                f"schema `public` to PUBLIC, as PostgreSQL did before 15).",
                fix=[
                    grants.revoke_create_on_schema(schema.schema, role),
                    f"-- From PUBLIC too, where it comes from (e.g. GRANT ALL ON SCHEMA {grants.quote_ident(schema.schema)} "
                    "TO PUBLIC, as in Pagila); this applies to every role:",
                    grants.revoke_create_on_schema(schema.schema, None),
                ],
            )
        )
    writable = [r for r in selected if r.can_write]
    if writable:
        findings.append(
            PrivilegeFinding(
                severity="warning", subject=f"schema `{where}`", database=database,
                message=f"role `{role}` may write (INSERT/UPDATE/DELETE/TRUNCATE) {len(writable)} relation(s) "
                f"of `{where}`: {_names(writable)}. A catalog reader should be read-only.",
            )
        )
    return findings


def _names(relations: Sequence[RelationAccess], limit: int = 8) -> str:
    shown = ", ".join(f"`{r.name}`" for r in relations[:limit])
    return shown + (f" and {len(relations) - limit} more" if len(relations) > limit else "")


compile_record_constructors(globals())  # see catalog/_records.py
