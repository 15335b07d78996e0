"""`check` (can the role read what the configuration selects?) and `grant-sql` (the recipe)."""

from pathlib import Path
from typing import Any

import click

from dagster_postgres_connection.access import grants
from dagster_postgres_connection.access.findings import PrivilegeReport, assess_privileges
from dagster_postgres_connection.access.privileges import inspect_privileges
from dagster_postgres_connection.cli._config import (
    CliConnection,
    connection_options,
    resolve_connection,
)
from dagster_postgres_connection.cli._output import (
    EXIT_FAILED_CHECK,
    debug_option,
    echo_json,
    echo_sql,
)

FIX_HEADER = "-- Fix: run as a superuser (or the owner of the objects), e.g. pasted into psql:"


@click.command()
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--sql-only", is_flag=True, help="Print only the fixing statements (e.g. to pipe into psql).")
@debug_option
def check(config: Path | None, as_json: bool, sql_only: bool, **flags: Any) -> None:
    """Check that the role can read everything CONFIG selects, and print the GRANTs that fix it.

    CONFIG is a connection's defs.yaml (or its folder); without it, the flags and the standard
    PG* variables are used. For every selected database and schema it checks CONNECT, USAGE and
    SELECT on tables, views and sequences, and whether default privileges cover tables created
    later. It warns when the role is a superuser or may write.

    Exit code: 0 when everything selected is readable (warnings allowed), 1 otherwise, 2 when
    the check could not run.
    """
    connection = resolve_connection(config, **flags)
    inspection = inspect_privileges(connection.settings)
    report = assess_privileges(inspection, connection.settings)
    if as_json:
        echo_json(_report_json(connection, report, inspection.statement_count))
    elif sql_only:
        echo_sql(report.fix_script())
    else:
        _print_report(connection, report)
    if not report.ok:
        raise click.exceptions.Exit(EXIT_FAILED_CHECK)


def _print_report(connection: CliConnection, report: PrivilegeReport) -> None:
    settings = connection.settings
    click.echo(
        f"Checking role `{report.role}` on `{settings.location}` for connection `{settings.name}` "
        f"({connection.source})"
    )
    for finding in report.findings:
        label = click.style("error", fg="red", bold=True) if finding.severity == "error" else click.style("warning", fg="yellow")
        click.echo(f"{label}: {finding.message}")
    errors = sum(1 for f in report.findings if f.severity == "error")
    warnings = len(report.findings) - errors
    summary = (
        f"{report.readable_relations} of {report.selected_relations} selected relations are readable; "
        f"{errors} error(s), {warnings} warning(s)."
    )
    click.echo(click.style(("OK: " if report.ok else "FAILED: ") + summary, fg="green" if report.ok else "red", bold=True))
    script = report.fix_script()
    if script:
        click.echo()
        click.echo(FIX_HEADER)
        echo_sql(script)


def _report_json(connection: CliConnection, report: PrivilegeReport, statements: int) -> dict[str, Any]:
    settings = connection.settings
    return {
        "ok": report.ok,
        "connection": settings.name,
        "host": settings.host,
        "port": settings.port,
        "role": report.role,
        "selected_relations": report.selected_relations,
        "readable_relations": report.readable_relations,
        "findings": [
            {"severity": f.severity, "subject": f.subject, "message": f.message, "database": f.database, "fix": list(f.fix)}
            for f in report.findings
        ],
        "fix_sql": report.fix_script(),
        "statement_count": statements,
    }


@click.command("grant-sql")
@click.option("--role", required=True, help="The read-only role to create and grant to.")
@click.option("--database", "-d", "databases", multiple=True, required=True, help="Database to grant on; repeat for several.")
@click.option("--schema", "schemas", multiple=True, default=("public",), show_default=True,
              help="Schema to grant on (in every database); repeat for several.")
@click.option("--owner", "owners", multiple=True,
              help="Role that creates the tables, for default privileges; repeat for several. Default: the role running the script.")
@click.option("--no-create-role", is_flag=True, help="The role exists: only grant.")
@click.option("--query-history", is_flag=True,
              help="Also what `query_history: true` needs: pg_stat_statements in each database and pg_read_all_stats.")
@debug_option
def grant_sql(
    role: str, databases: tuple[str, ...], schemas: tuple[str, ...], owners: tuple[str, ...], no_create_role: bool,
    query_history: bool,
) -> None:
    """Print the SQL that creates a read-only role for this integration (for psql).

    CONNECT on each database, USAGE on each schema, SELECT on its tables, views and sequences,
    and default privileges so tables created later are readable too. The password is asked by
    psql's \\password, so it never appears in the script, the shell history or the server log.
    """
    echo_sql(
        grants.read_only_recipe(
            role, {database: list(schemas) for database in databases}, create_role=not no_create_role, creators=owners,
            query_history=query_history,
        )
    )
