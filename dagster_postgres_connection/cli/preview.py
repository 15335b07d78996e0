"""`preview`: what a configuration would sync, and the filter rule behind every decision.

Nothing is written. The relations listed come from the privilege inspection (every relation,
selected or not); which of them become assets, and under which keys, comes from reading the
catalog and running it through `build_asset_specs` with the connection's translator, the
component's own path, so the preview cannot disagree with what `dg` then loads.
"""

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import click
from dagster_shared.record import record

from dagster_postgres_connection.access.privileges import DatabaseInspection, inspect_privileges
from dagster_postgres_connection.access.readability import Readability
from dagster_postgres_connection.catalog._records import compile_record_constructors
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.catalog.selection import select_relation, select_schema
from dagster_postgres_connection.cli._config import (
    CliConnection,
    connection_options,
    resolve_connection,
)
from dagster_postgres_connection.cli._output import CliError, debug_option, echo_json

Status = Literal["synced", "excluded", "skipped", "not_an_asset"]
_MARKS: dict[Status, str] = {"synced": "+", "excluded": "-", "skipped": "!", "not_an_asset": "~"}


@record
class PreviewRow:
    database: str
    schema: str
    name: str
    kind: str
    status: Status
    rule: str  # the filter rule that decided, or why a selected relation is not synced
    asset_key: str | None = None

    def matches(self, name: str) -> bool:
        lowered = name.lower()
        return lowered in {
            self.database.lower(), self.schema.lower(), f"{self.database}.{self.schema}".lower(),
            self.name.lower(), f"{self.schema}.{self.name}".lower(), f"{self.database}.{self.schema}.{self.name}".lower(),
        }


@click.command()
@connection_options
@click.option("--explain", "explain", metavar="NAME",
              help="Only this database, schema or relation (`name`, `schema.name` or `database.schema.name`), with every rule.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@debug_option
def preview(config: Path | None, explain: str | None, as_json: bool, **flags: Any) -> None:
    """Show what CONFIG would sync, without writing anything.

    Counts per database and schema, and for every relation whether it is synced (+), excluded
    by the filters (-), selected but unreadable by the role (!), or read but not an asset of its
    own (~, e.g. a partition), with the rule that decided. This is how to debug filter regexes.
    """
    connection = resolve_connection(config, **flags)
    inspection = inspect_privileges(connection.settings)
    rows = build_preview_rows(connection, inspection.databases)
    databases = list(inspection.databases)
    if explain:
        rows = [row for row in rows if row.matches(explain)]
        databases = [d for d in databases if d.name.lower() == explain.lower() or any(r.database == d.name for r in rows)]
        if not databases:
            raise CliError(
                f"`{explain}` matches no database, schema or relation of `{connection.settings.location}`.",
                hint="Spell it `name`, `schema.name` or `database.schema.name` (case does not matter).",
            )
    if as_json:
        echo_json(_preview_json(connection, databases, rows))
    else:
        _print_preview(connection, databases, rows, explain=explain is not None)


def build_preview_rows(connection: CliConnection, databases: Sequence[DatabaseInspection]) -> list[PreviewRow]:
    """One row per relation of every inspected database, with its status and deciding rule."""
    settings = connection.settings
    asset_keys = _asset_keys_by_table_name(connection) if any(d.privileges for d in databases) else {}
    rows: list[PreviewRow] = []
    for database in databases:
        if database.privileges is None:
            continue
        usage = {schema.schema: schema.has_usage for schema in database.privileges.schemas}
        for relation in database.privileges.relations:
            kind = relation.kind
            if kind is None:  # sequences are granted, never synced
                continue
            decision = select_relation(settings.filters, database.name, relation.schema, relation.name, kind)
            table_name = f"{database.name}.{relation.schema}.{relation.name}"
            status: Status
            if not decision:
                status, rule = "excluded", decision.rule
            elif (readability := relation.readability(usage.get(relation.schema, False))) is Readability.NO_SCHEMA_USAGE:
                status, rule = "skipped", f"role `{settings.username}` lacks USAGE on schema `{relation.schema}`"
            elif readability is Readability.NO_SELECT:
                status, rule = "skipped", f"role `{settings.username}` lacks SELECT on it"
            elif table_name in asset_keys:
                status, rule = "synced", decision.rule
            else:
                status, rule = "not_an_asset", "read, but not an asset of its own (a partition is part of its partitioned table's asset)"
            rows.append(
                PreviewRow(database=database.name, schema=relation.schema, name=relation.name, kind=kind.value,
                           status=status, rule=rule, asset_key=asset_keys.get(table_name))
            )
    return rows


def _asset_keys_by_table_name(connection: CliConnection) -> dict[str, str]:
    """`database.schema.name` -> asset key, through the component's own snapshot -> spec path."""
    # dagster is imported here, for the specs, so that the CLI's other commands need not import it.
    from dagster._core.definitions.metadata import TableMetadataSet

    from dagster_postgres_connection.assets import build_asset_specs

    snapshot = read_catalog(connection.settings)
    specs = build_asset_specs(snapshot, connection.settings, connection.translator)
    keys: dict[str, str] = {}
    for spec in specs:
        table_name = TableMetadataSet.extract(spec.metadata).table_name
        if table_name:
            keys[table_name] = spec.key.to_user_string()
    return keys


def _print_preview(connection: CliConnection, databases: Sequence[DatabaseInspection], rows: list[PreviewRow], *, explain: bool) -> None:
    settings = connection.settings
    click.echo(f"Preview of connection `{settings.name}` on `{settings.location}` ({connection.source}); nothing is written.")
    for database in databases:
        click.echo()
        state = "included" if database.decision else "excluded"
        detail = database.decision.rule
        if database.decision and database.privileges is None:
            state, detail = "not readable", database.error or f"role `{settings.username}` cannot connect to it"
        click.echo(click.style(f"database {database.name}: {state}", bold=True) + f" ({detail})")
        by_schema: dict[str, list[PreviewRow]] = {}
        for row in rows:
            if row.database == database.name:
                by_schema.setdefault(row.schema, []).append(row)
        for schema, schema_rows in by_schema.items():
            counts = Counter(row.status for row in schema_rows)
            schema_decision = select_schema(settings.filters, schema)
            click.echo(f"  schema {schema}: " + ", ".join(f"{counts[s]} {s.replace('_', ' ')}" for s in _MARKS if counts[s])
                       + ("" if schema_decision or explain else f" ({schema_decision.rule})"))
            if not schema_decision and not explain:
                continue  # every relation was excluded by the same schema rule
            width = max(len(row.name) for row in schema_rows)
            for row in schema_rows:
                key = f" -> {row.asset_key}" if row.asset_key else ""
                click.echo(f"    {_MARKS[row.status]} {row.name:<{width}}  {row.kind:<18} {row.rule}{key}")
    totals = Counter(row.status for row in rows)
    click.echo()
    click.echo(
        f"Total: {totals['synced']} relation(s) would be synced, {totals['excluded']} excluded, "
        f"{totals['skipped']} skipped (not readable), {totals['not_an_asset']} not assets of their own."
    )


def _preview_json(connection: CliConnection, databases: Sequence[DatabaseInspection], rows: list[PreviewRow]) -> dict[str, Any]:
    settings = connection.settings
    return {
        "connection": settings.name,
        "host": settings.host,
        "port": settings.port,
        "databases": [
            {
                "name": d.name,
                "included": d.decision.included,
                "rule": d.decision.rule,
                "readable": d.privileges is not None,
                "error": d.error,
                "counts": dict(Counter(row.status for row in rows if row.database == d.name)),
            }
            for d in databases
        ],
        "relations": [
            {"database": r.database, "schema": r.schema, "name": r.name, "kind": r.kind, "status": r.status,
             "rule": r.rule, "asset_key": r.asset_key}
            for r in rows
        ],
        "totals": dict(Counter(row.status for row in rows)),
    }


compile_record_constructors(globals())  # see catalog/_records.py
