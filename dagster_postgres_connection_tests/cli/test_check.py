"""`check` on real Postgres: the gaps it finds, and the GRANTs it prints that close them."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from psycopg2 import sql

from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.cli.conftest import (
    PASSWORD_ENV,
    RunCli,
    run_sql_script,
    target_flags,
)
from dagster_postgres_connection_tests.utils import REPO_ROOT, PgTarget

FIX_HEADER = "-- Fix: run as a superuser (or the owner of the objects), e.g. pasted into psql:"
# Pagila's dump grants ALL on schema `public` to PUBLIC, so every role may CREATE there: `check`
# warns and prints the REVOKEs (the role's own grant, then PUBLIC's, with a comment saying why).
REVOKE_CREATE_ON_PUBLIC = [
    "REVOKE CREATE ON SCHEMA public FROM dagster_reader;",
    "-- From PUBLIC too, where it comes from (e.g. GRANT ALL ON SCHEMA public TO PUBLIC, as in Pagila); this applies to every role:",
    "REVOKE CREATE ON SCHEMA public FROM PUBLIC;",
]


def fix_block(output: str) -> list[str]:
    assert FIX_HEADER in output, output
    return output.split(FIX_HEADER + "\n", 1)[1].strip().splitlines()


def test_check_prints_exactly_the_grants_that_make_it_pass(
    pagila_server: EmbeddedPostgres, fresh_database: Callable[..., PgTarget], run_cli: RunCli
) -> None:
    target = fresh_database()
    # A schema the role has no USAGE on (odd spelling, to prove the quoting), and two Pagila
    # tables it may no longer SELECT.
    pagila_server.execute(
        'CREATE SCHEMA "Sales EU"; CREATE TABLE "Sales EU"."Orders" (id int PRIMARY KEY);'
        ' CREATE VIEW "Sales EU".order_ids AS SELECT id FROM "Sales EU"."Orders";'
        " REVOKE SELECT ON public.film, public.actor FROM dagster_reader;",
        target.database,
    )

    failed = run_cli("check", *target_flags(target))
    assert failed.exit_code == 1, failed.output
    assert "error: role `dagster_reader` lacks SELECT on 2 selected relation(s) of " f"`{target.database}.public`: `actor`, `film`" in failed.output
    assert f"error: role `dagster_reader` lacks USAGE on schema `{target.database}.Sales EU`" in failed.output
    assert "FAILED: " in failed.output
    fix = fix_block(failed.output)
    assert fix[0] == f"\\connect {target.database}"
    assert sorted(fix[1:]) == sorted([  # schemas come in the server's collation order
        "GRANT SELECT ON TABLE public.actor, public.film TO dagster_reader;",
        'GRANT USAGE ON SCHEMA "Sales EU" TO dagster_reader;',
        'GRANT SELECT ON ALL TABLES IN SCHEMA "Sales EU" TO dagster_reader;',
        'ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA "Sales EU" GRANT SELECT ON TABLES TO dagster_reader;',
        *REVOKE_CREATE_ON_PUBLIC,
    ])
    # --sql-only prints the same block, ready to pipe into psql.
    assert run_cli("check", *target_flags(target), "--sql-only").output.splitlines() == fix

    run_sql_script(pagila_server, fix)

    passed = run_cli("check", *target_flags(target))
    assert passed.exit_code == 0, passed.output
    assert "error:" not in passed.output
    assert FIX_HEADER not in passed.output
    selected = 30 + 2  # Pagila's relations (partitions included) and the two in "Sales EU"
    assert f"OK: {selected} of {selected} selected relations are readable" in passed.output


def test_missing_connect_is_a_gap_with_its_grant(
    pagila_server: EmbeddedPostgres, fresh_database: Callable[..., PgTarget], run_cli: RunCli
) -> None:
    target = fresh_database()
    database = sql.Identifier(target.database)
    pagila_server.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC, dagster_reader").format(database))

    failed = run_cli("check", *target_flags(target), "--json")
    assert failed.exit_code == 1
    report = json.loads(failed.output)
    assert report["ok"] is False
    assert [f["message"] for f in report["findings"] if f["severity"] == "error"] == [
        f"role `dagster_reader` lacks CONNECT on database `{target.database}` (its schemas are checked once it has it)."
    ]
    assert report["fix_sql"] == [f"GRANT CONNECT ON DATABASE {target.database} TO dagster_reader;"]

    run_sql_script(pagila_server, report["fix_sql"])
    assert run_cli("check", *target_flags(target)).exit_code == 0


def test_default_privileges_and_sequences_are_warnings_with_fixes(
    pagila_server: EmbeddedPostgres, fresh_database: Callable[..., PgTarget], run_cli: RunCli
) -> None:
    target = fresh_database()
    pagila_server.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM dagster_reader;"
        " REVOKE SELECT ON ALL SEQUENCES IN SCHEMA public FROM dagster_reader;",
        target.database,
    )
    result = run_cli("check", *target_flags(target), "--json")
    assert result.exit_code == 0, result.output  # today's relations are all readable
    report = json.loads(result.output)
    warnings = [f["message"] for f in report["findings"] if f["severity"] == "warning"]
    assert any("default privileges do not give role `dagster_reader` SELECT on tables that `postgres` creates" in w for w in warnings)
    assert any("lacks SELECT on 13 sequence(s)" in w for w in warnings), warnings
    assert report["fix_sql"] == [
        f"\\connect {target.database}",
        "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO dagster_reader;",
        "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO dagster_reader;",
        *REVOKE_CREATE_ON_PUBLIC,
    ]
    run_sql_script(pagila_server, report["fix_sql"])
    after = json.loads(run_cli("check", *target_flags(target), "--json").output)
    assert after["fix_sql"] == []
    assert after["findings"] == []


def test_create_on_a_schema_is_a_warning_with_the_revokes_that_fix_it(
    pagila_server: EmbeddedPostgres, fresh_database: Callable[..., PgTarget], run_cli: RunCli
) -> None:
    target = fresh_database()
    result = run_cli("check", *target_flags(target))
    assert result.exit_code == 0, result.output
    assert (
        f"warning: role `dagster_reader` may CREATE objects in schema `{target.database}.public`: a catalog reader "
        "should be read-only. The REVOKEs below fix it, from PUBLIC too if PUBLIC holds the privilege (Pagila "
        "grants ALL on schema `public` to PUBLIC, as PostgreSQL did before 15)."
    ) in result.output
    assert fix_block(result.output) == [f"\\connect {target.database}", *REVOKE_CREATE_ON_PUBLIC]
    # Granted to the role itself, too: both REVOKEs are needed, and they are enough.
    pagila_server.execute("GRANT CREATE ON SCHEMA public TO dagster_reader", target.database)
    run_sql_script(pagila_server, fix_block(run_cli("check", *target_flags(target)).output))
    after = run_cli("check", *target_flags(target))
    assert "may CREATE" not in after.output and FIX_HEADER not in after.output, after.output


def test_superuser_and_writers_are_warned(pagila: PgTarget, run_cli: RunCli) -> None:
    as_superuser = [*target_flags(pagila)]
    as_superuser[as_superuser.index("--username") + 1] = "postgres"
    report = json.loads(run_cli("check", *as_superuser, "--json").output)
    assert report["ok"] is True
    messages = " ".join(f["message"] for f in report["findings"])
    assert "role `postgres` is a superuser" in messages
    assert "grant-sql --role dagster_reader" in messages


def test_statements_do_not_grow_with_the_number_of_tables(
    pagila_server: EmbeddedPostgres, fresh_database: Callable[..., PgTarget], run_cli: RunCli
) -> None:
    small, large = fresh_database(), fresh_database()
    pagila_server.execute(
        "DO $$ BEGIN FOR i IN 1..300 LOOP EXECUTE format('CREATE TABLE public.extra_%s (id int)', i); END LOOP; END $$;",
        large.database,
    )
    counts = [json.loads(run_cli("check", *target_flags(t), "--json").output)["statement_count"] for t in (small, large)]
    # Role and databases, then schemas, relations and default privileges per database (plus any
    # per-session setup of connection.py): the same for 30 and 330 tables.
    assert counts[0] == counts[1] <= 10


def test_a_configured_database_that_does_not_exist_is_an_error_without_fix(pagila: PgTarget, run_cli: RunCli) -> None:
    result = run_cli("check", *target_flags(pagila), "--database", "no_such_db", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert errors == [
        {"severity": "error", "subject": "database `no_such_db`", "database": None, "fix": [],
         "message": "database `no_such_db` does not exist on the server: fix `databases`."}
    ]
    assert report["readable_relations"] == report["selected_relations"] > 0  # pagila itself was checked


def test_check_without_argument_in_a_project_uses_its_connection(
    pagila: PgTarget, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # A name per run: the project's module stays imported in this process after a run on
    # another server version, and `init` refuses a name that clashes with an importable module.
    name = f"dpc_found_{pagila.database}_{pagila.port}"
    created = run_cli("init", name, "--host", pagila.host, "--port", str(pagila.port),
                      "--username", pagila.user, "-d", pagila.database, "--password-env-var", PASSWORD_ENV)
    assert created.exit_code == 0, created.output
    monkeypatch.chdir(tmp_path / name / "src")  # anywhere inside the project

    result = run_cli("check")
    assert result.exit_code == 0, result.output
    assert f"Using {name}/defs/{name}/defs.yaml (the connection of this project)" in result.output
    assert "Checking role `dagster_reader` on" in result.output and f"for connection `{name}`" in result.output
    assert "PGPASSWORD" not in result.output


def test_check_without_argument_lists_the_connections_when_several(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "workspace"
    shutil.copytree(REPO_ROOT / "examples" / "multiple_connections", workspace,
                    ignore=shutil.ignore_patterns(".local_defs_state", "__pycache__", ".env"))
    monkeypatch.chdir(workspace)

    result = run_cli("check")
    assert result.exit_code != 0
    first = "projects/pagila_prod/src/pagila_prod/defs/pagila_prod/defs.yaml"
    second = "projects/pagila_reporting/src/pagila_reporting/defs/pagila_reporting/defs.yaml"
    assert f"Error: This workspace has 2 connections; name the one to use: `{first}`, `{second}`" in result.output
    assert f"Hint: e.g. `dagster-postgres-connection check {first}`." in result.output
    assert "PGPASSWORD" not in result.output
