"""`dagster-postgres-connection`: the command line for the first ten minutes.

`check` (permissions, with the exact GRANTs), `grant-sql` (the read-only role recipe),
`preview` (what the filters select, and why), `sync` (write the snapshot) and `init` (a new
connection project). Also `python -m dagster_postgres_connection`.
"""

import atexit
import os
import sys
from typing import NoReturn

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


def main() -> NoReturn:
    """Console script entry point.

    Ends with `os._exit` once the output is flushed and `atexit` handlers have run: tearing the
    interpreter down after a 10k-table sync (freeing millions of objects, a last garbage
    collection) took ~1 s, a sixth of the command. By then nothing else needs cleaning up: the
    snapshot file is written and renamed, connections are closed, worker threads have ended.
    """
    try:
        cli(prog_name="dagster-postgres-connection")  # standalone mode: always raises SystemExit
        code: object = 0
    except SystemExit as exit_:
        code = exit_.code
    if isinstance(code, str):  # what the interpreter does with `sys.exit("message")`
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()  # registered handlers still run (logging flushes its handlers here)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
