"""`dagster-postgres-connection`: the command line for the first ten minutes.

`check` (permissions, with the exact GRANTs), `grant-sql` (the read-only role recipe),
`preview` (what the filters select, and why), `sync` (write the snapshot) and `init` (a new
connection project). Also `python -m dagster_postgres_connection`.
"""

import click

from dagster_postgres_connection.cli._output import DpcGroup, debug_option
from dagster_postgres_connection.cli.check import check, grant_sql
from dagster_postgres_connection.cli.init import init
from dagster_postgres_connection.cli.preview import preview
from dagster_postgres_connection.cli.sync import sync
from dagster_postgres_connection.version import __version__


@click.group(cls=DpcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dagster-postgres-connection")
@debug_option
def cli() -> None:
    """A PostgreSQL catalog as Dagster assets: check permissions, preview, sync, start a project.

    Commands that take a configuration accept a connection's defs.yaml (or its folder), e.g.
    `dagster-postgres-connection check defs/pagila_prod/defs.yaml`, resolving `{{ env.X }}` from
    the environment and the project's .env; or flags and the standard PG* variables.
    """


for command in (check, grant_sql, preview, sync, init):
    cli.add_command(command)


def main() -> None:
    """Console script entry point."""
    cli(prog_name="dagster-postgres-connection")
