"""`--help` and `sync` with flags run without importing `dagster` (measured: 0.7 s and 30 MB less).

Each command runs in a fresh interpreter, so that the modules this test session has already
imported do not hide an import; the child reports the `dagster` modules it loaded at exit.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg

import dagster_postgres_connection
from dagster_postgres_connection.catalog._log import get_dagster_logger
from dagster_postgres_connection.catalog.state import load_snapshot
from dagster_postgres_connection.cli._config import _COMPONENT_TYPE
from dagster_postgres_connection.components.connection_component.scaffolder import COMPONENT_TYPE
from dagster_postgres_connection_tests.cli.conftest import PASSWORD_ENV, target_flags
from dagster_postgres_connection_tests.utils import PgTarget

_MARK = "DAGSTER_MODULES_AT_EXIT="

# Runs the console script's `main`, then prints which `dagster` modules were imported (from an
# `atexit` handler: `main` ends the process with `os._exit` after running those).
_CHILD = f"""
import atexit, sys
from dagster_postgres_connection.cli import main

def report():
    loaded = sorted(m for m in sys.modules if m == "dagster" or m.startswith("dagster."))
    print({_MARK!r} + ",".join(loaded), file=sys.stderr)

atexit.register(report)
main()
"""


def _run_cli(
    *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    process = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    marks = [line for line in process.stderr.splitlines() if line.startswith(_MARK)]
    assert len(marks) == 1, process.stderr
    loaded = [m for m in marks[0].removeprefix(_MARK).split(",") if m]
    return process, loaded


def test_help_does_not_import_dagster() -> None:
    process, loaded = _run_cli("--help")
    assert process.returncode == 0, process.stderr
    assert "sync" in process.stdout and "preview" in process.stdout
    assert loaded == []


def test_sync_with_flags_does_not_import_dagster(pagila: PgTarget, tmp_path: Path) -> None:
    output = tmp_path / "snapshot.json"
    process, loaded = _run_cli(
        "sync",
        *target_flags(pagila),
        "--name",
        "pagila_prod",
        "--output",
        str(output),
        env={PASSWORD_ENV: pagila.password},
    )
    assert process.returncode == 0, process.stderr
    assert loaded == []
    snapshot = load_snapshot(output)
    assert snapshot.connection_name == "pagila_prod"
    assert (pagila.database, "public", "film") in snapshot.relations_by_key()
    assert (
        f"Synced connection `pagila_prod`: 1 database(s), {len(snapshot.relations())} relations"
        in process.stdout
    )


def test_a_failing_sync_reports_the_error_without_importing_dagster(tmp_path: Path) -> None:
    """The error path (our `PostgresUnreachableError`, no longer a `dagster.Failure`) stays light too."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process, loaded = _run_cli(
        "sync",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--username",
        "nobody",
        "--database",
        "postgres",
        "--password-env-var",
        PASSWORD_ENV,
        "--output",
        str(tmp_path / "s.json"),
        env={PASSWORD_ENV: "not-the-password"},
    )
    assert process.returncode == 2, process.stderr
    error = next(line for line in process.stderr.splitlines() if line.startswith("Error: "))
    assert f"127.0.0.1:{port}" in error and "Traceback" not in process.stderr
    assert "not-the-password" not in process.stdout + process.stderr
    assert loaded == []
    assert not (tmp_path / "s.json").exists()


def test_the_package_still_lists_every_public_name_for_dg() -> None:
    """`dg` finds the component through `dir()` + `getattr` on the package (lazy names included)."""
    from dagster.components.core.package_entry import get_package_objects_in_module

    assert set(dagster_postgres_connection.__all__) <= set(dir(dagster_postgres_connection))
    for name in dagster_postgres_connection.__all__:
        assert getattr(dagster_postgres_connection, name) is not None
    entries = dict(get_package_objects_in_module(dagster_postgres_connection))
    assert (
        entries["PostgresConnectionComponent"]
        is dagster_postgres_connection.PostgresConnectionComponent
    )
    assert _COMPONENT_TYPE == COMPONENT_TYPE


def test_the_catalog_logger_is_dagsters_own() -> None:
    """The same logger object, so warnings of the reader land in a run's event log."""
    assert get_dagster_logger() is dg.get_dagster_logger()
