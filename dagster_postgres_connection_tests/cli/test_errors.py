"""Errors: one line plus a hint, no traceback unless --debug, and never the password."""

import subprocess
import sys
from pathlib import Path

import yaml

from dagster_postgres_connection.testing import find_free_port
from dagster_postgres_connection_tests.cli.conftest import PASSWORD_ENV, RunCli, target_flags
from dagster_postgres_connection_tests.utils import PgTarget

WRONG_PASSWORD = "Wrong-Secret-4711"


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error: ")]


def test_wrong_password_names_user_host_and_variable(pagila: PgTarget, run_cli: RunCli) -> None:
    result = run_cli("check", *target_flags(pagila), env={PASSWORD_ENV: WRONG_PASSWORD})
    assert result.exit_code == 2
    [line] = error_lines(result.output)
    assert f"Could not connect to `dagster_reader`@`{pagila.host}:{pagila.port}`/`{pagila.database}`" in line
    assert "password authentication failed" in line
    assert f"Check that the environment variable `{PASSWORD_ENV}` holds the password of role `dagster_reader`" in line
    assert "Traceback" not in result.output
    assert WRONG_PASSWORD not in result.output


def test_debug_shows_the_traceback_but_not_the_password(pagila: PgTarget, run_cli: RunCli) -> None:
    for args in (["--debug", "check"], ["preview", "--debug"]):
        result = run_cli(*args, *target_flags(pagila), env={PASSWORD_ENV: WRONG_PASSWORD})
        assert result.exit_code == 2
        assert "Traceback (most recent call last)" in result.output
        assert WRONG_PASSWORD not in result.output
    ok = run_cli("--debug", "check", *target_flags(pagila), "--json")
    assert ok.exit_code == 0
    assert pagila.password not in ok.output


def test_unreachable_port_names_host_and_port(pagila: PgTarget, run_cli: RunCli) -> None:
    flags = target_flags(pagila)
    port = find_free_port()
    flags[flags.index("--port") + 1] = str(port)
    result = run_cli("preview", *flags)
    assert result.exit_code == 2
    [line] = error_lines(result.output)
    assert f"Nothing listens on `{pagila.host}:{port}`: check `host` and `port`" in line


def test_missing_password_variable_is_named(pagila: PgTarget, run_cli: RunCli) -> None:
    flags = target_flags(pagila)
    flags[flags.index("--password-env-var") + 1] = "DPC_NOT_SET_ANYWHERE"
    result = run_cli("check", *flags)
    assert result.exit_code == 2
    assert error_lines(result.output) == [
        "Error: The environment variable `DPC_NOT_SET_ANYWHERE` holding the password is not set. "
        "Set it (e.g. in `.env` next to the project) before loading or syncing."
    ]


def test_defs_yaml_errors_name_the_attribute(pagila: PgTarget, run_cli: RunCli, tmp_path: Path) -> None:
    attributes = {"name": "pagila_prod", "host": pagila.host, "port": pagila.port, "username": pagila.user,
                  "password": "{{ env.DPC_NOT_SET_ANYWHERE }}"}
    defs_yaml = tmp_path / "defs.yaml"
    defs_yaml.write_text(yaml.safe_dump({"type": "dagster_postgres_connection.PostgresConnectionComponent", "attributes": attributes}))
    missing = run_cli("check", str(defs_yaml))
    assert missing.exit_code == 2
    assert error_lines(missing.output) == [
        "Error: `password`: the environment variable `DPC_NOT_SET_ANYWHERE` is not set. Set it (e.g. in the "
        "project's `.env`) to the password of the connecting role."
    ]

    attributes["password"] = f"{{{{ env.{PASSWORD_ENV} }}}}"
    attributes["hots"] = "typo"
    defs_yaml.write_text(yaml.safe_dump({"type": "dagster_postgres_connection.PostgresConnectionComponent", "attributes": attributes}))
    extra = run_cli("preview", str(tmp_path))  # the folder of the defs.yaml works too
    assert extra.exit_code == 2
    [line] = error_lines(extra.output)
    assert line.startswith("Error: Invalid configuration: `hots`: Extra inputs are not permitted")


def test_console_entry_point_as_a_module(pagila: PgTarget) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dagster_postgres_connection", "check", *target_flags(pagila)],
        env={"PATH": "/usr/bin:/bin", PASSWORD_ENV: WRONG_PASSWORD}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("Error: Could not connect to `dagster_reader`@")


def test_flags_beside_a_defs_yaml_are_refused(pagila: PgTarget, run_cli: RunCli, tmp_path: Path) -> None:
    attributes = {"name": "pagila_prod", "host": pagila.host, "port": pagila.port, "username": pagila.user,
                  "password": f"{{{{ env.{PASSWORD_ENV} }}}}", "databases": [pagila.database]}
    defs_yaml = tmp_path / "defs.yaml"
    defs_yaml.write_text(yaml.safe_dump({"type": "dagster_postgres_connection.PostgresConnectionComponent", "attributes": attributes}))
    result = run_cli("check", str(defs_yaml), "--port", "1", "-d", "pagila")
    assert result.exit_code == 2
    assert error_lines(result.output) == [f"Error: --port, --database cannot be combined with the configuration `{defs_yaml}`."]
    # PG* variables are defaults, not typed flags: they do not get in the way of a defs.yaml.
    assert run_cli("check", str(defs_yaml), env={"PGPORT": "1"}).exit_code == 0
