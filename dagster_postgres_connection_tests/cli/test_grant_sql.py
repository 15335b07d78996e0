"""`grant-sql`: the printed recipe, run as the superuser, gives a role that passes `check`."""

import secrets
from collections.abc import Callable

from psycopg2 import sql

from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.cli.conftest import (
    PASSWORD_ENV,
    RunCli,
    run_sql_script,
    target_flags,
)
from dagster_postgres_connection_tests.utils import PgTarget


def test_recipe_creates_a_read_only_role_that_passes_check(
    pagila_server: EmbeddedPostgres, fresh_database: Callable[..., PgTarget], run_cli: RunCli
) -> None:
    target = fresh_database()
    role = f"Reader_{secrets.token_hex(3)}"  # mixed case: must be quoted everywhere
    result = run_cli("grant-sql", "--role", role, "--database", target.database, "--owner", "postgres")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1:4] == [
        f'CREATE ROLE "{role}" WITH LOGIN;',
        f'\\password "{role}"',
        f'GRANT CONNECT ON DATABASE {target.database} TO "{role}";',
    ]
    assert f'ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO "{role}";' in lines
    assert all(line.endswith(";") for line in lines if not line.startswith(("\\", "--")))

    run_sql_script(pagila_server, lines)
    # What `\password` would have done interactively.
    pagila_server.execute(sql.SQL("ALTER ROLE {} PASSWORD 'Recipe-pw-1'").format(sql.Identifier(role)))

    flags = target_flags(target)
    flags[flags.index("--username") + 1] = role
    checked = run_cli("check", *flags, env={PASSWORD_ENV: "Recipe-pw-1"})
    assert checked.exit_code == 0, checked.output
    assert "error:" not in checked.output
    assert "default privileges do not" not in checked.output
    assert "may write" not in checked.output
