"""`sync`: the snapshot lands where the component loads it from, with a summary of real numbers."""

import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._utils.test.definitions import scoped_definitions_load_context
from dagster.components.testing import create_defs_folder_sandbox

from dagster_postgres_connection import PostgresConnectionComponent
from dagster_postgres_connection.catalog.state import load_snapshot
from dagster_postgres_connection_tests.cli.conftest import PASSWORD_ENV, RunCli, target_flags
from dagster_postgres_connection_tests.cli.test_preview import attributes
from dagster_postgres_connection_tests.utils import PgTarget

SUMMARY = re.compile(
    r"Synced connection `(?P<name>\w+)`: 1 database\(s\), (?P<relations>\d+) relations, (?P<columns>\d+) columns "
    r"in (?P<seconds>[\d.]+) s, (?P<statements>\d+) statements\."
)


def test_sync_writes_the_components_state_and_the_component_loads_it(
    pagila: PgTarget, run_cli: RunCli, monkeypatch: Any
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, pagila.password)
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=PostgresConnectionComponent,
            defs_yaml_contents={"type": "dagster_postgres_connection.PostgresConnectionComponent", "attributes": attributes(pagila)},
        )
        result = run_cli("sync", str(defs_path))  # the folder works as well as its defs.yaml
        assert result.exit_code == 0, result.output
        # Not a terminal: plain lines, one per database event.
        assert f"{pagila.database}: reading" in result.output.splitlines()
        summary = SUMMARY.search(result.output)
        assert summary, result.output
        state = sorted(Path(sandbox.project_root).rglob(".local_defs_state/*/state"))
        assert [p.parent.name for p in state] == ["PostgresConnectionComponent__pagila_prod__"]
        assert f"Snapshot: {state[0]}" in result.output
        snapshot = load_snapshot(state[0])
        assert int(summary["relations"]) == len(snapshot.relations())
        assert int(summary["columns"]) == sum(len(r.columns) for r in snapshot.relations())
        assert int(summary["statements"]) == snapshot.statement_count > 0
        assert pagila.password not in state[0].read_text()

        # The component now loads from that snapshot, without reading the catalog again.
        written = state[0].read_text()
        with scoped_definitions_load_context(), sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
            keys = {spec.key for spec in defs.assets or () if isinstance(spec, dg.AssetSpec)}
        assert dg.AssetKey(["pagila_prod", "pagila", "public", "film"]) in keys
        assert state[0].read_text() == written


def test_sync_with_flags_needs_output(pagila: PgTarget, run_cli: RunCli, tmp_path: Path) -> None:
    missing = run_cli("sync", *target_flags(pagila))
    assert missing.exit_code == 2
    assert "Error: No snapshot location" in missing.output
    assert "Hint: Pass `--output PATH`" in missing.output

    output = tmp_path / "snapshot.json"
    result = run_cli("sync", *target_flags(pagila), "--output", str(output))
    assert result.exit_code == 0, result.output
    assert load_snapshot(output).connection_name == "postgres"


def test_sync_on_a_terminal_shows_live_progress_per_database(pagila: PgTarget, tmp_path: Path) -> None:
    """Through a real pseudo-terminal: the status line is redrawn, each database gets a ✓ line."""
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster_postgres_connection", "sync", *target_flags(pagila), "-o", str(tmp_path / "s.json")],
        stdout=secondary, stderr=secondary, env={**os.environ, PASSWORD_ENV: pagila.password}, close_fds=True,
    )
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=120) == 0, output
    text = output.decode()
    assert f"\r\x1b[K⠿ reading {pagila.database} (0 done)" in text
    assert re.search(rf"\r\x1b\[K\S*✓\S* {pagila.database}: read in [\d.]+ s", text), text
    assert f"{pagila.database}: reading\n" not in text.replace("\r\n", "\n")  # that is the plain, non-terminal form


def test_sync_reports_each_skipped_relation_once(
    pagila_server: Any, fresh_database: Any, tmp_path: Path
) -> None:
    """The reader logs a warning per skipped object (for runs and loads) and `sync` prints its own
    list: run as a user runs it (a process of its own, no logging set up), each appears once."""
    target: PgTarget = fresh_database()
    pagila_server.execute("REVOKE SELECT ON public.film FROM dagster_reader", target.database)
    cli = str(Path(sys.executable).with_name("dagster-postgres-connection"))
    result = subprocess.run(
        [cli, "sync", *target_flags(target), "--output", str(tmp_path / "snapshot")],
        env={**os.environ, PASSWORD_ENV: target.password}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if "public.film" in line]
    assert lines == [f"skipped {target.database}.public.film: role `dagster_reader` lacks SELECT on table `public.film`"], output
