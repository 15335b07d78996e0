"""Running the CLI in-process against the session's real servers."""

from collections.abc import Callable, Mapping, Sequence

import pytest
from click.testing import CliRunner, Result

from dagster_postgres_connection.cli import cli
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.utils import PgTarget

PASSWORD_ENV = "DPC_CLI_TEST_PASSWORD"

RunCli = Callable[..., Result]


def target_flags(target: PgTarget) -> list[str]:
    """The connection as flags; the password comes from `PASSWORD_ENV`."""
    return [
        "--host", target.host, "--port", str(target.port), "--username", target.user,
        "--database", target.database, "--password-env-var", PASSWORD_ENV,
    ]


def run_sql_script(server: EmbeddedPostgres, lines: Sequence[str], database: str = "postgres") -> None:
    """Runs printed SQL as the superuser, as psql would: `\\connect` switches database,
    other meta-commands (`\\password`) are psql's own and skipped."""
    for line in lines:
        if line.startswith("\\connect "):
            database = line.removeprefix("\\connect ").strip().strip('"').replace('""', '"')
        elif line.startswith(("\\", "--")) or not line.strip():
            continue
        else:
            assert line.endswith(";"), line
            server.execute(line, database)


@pytest.fixture(name="run_cli")
def run_cli_fixture(pagila: PgTarget) -> RunCli:
    """`run_cli(*args, env=None)`: the CLI in-process, with the reader's password in `PASSWORD_ENV`."""

    def run(*args: str, env: Mapping[str, str] | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(cli, list(args), env={PASSWORD_ENV: pagila.password, **(env or {})}, catch_exceptions=False)

    return run
