"""`sync`: read the catalog and write the snapshot where the component loads it from.

The same two calls as the component's `write_state_to_path` (`read_catalog`, then the atomic
`write_snapshot`), plus progress: a live status line per database on a terminal, plain lines
otherwise (CI logs), and a summary. Before them, one statement per database checks whether the
catalog changed since the snapshot at the target path (`catalog/fingerprint.py`): when nothing
did, the snapshot is kept as it is and nothing else is read (`--full` reads anyway).
"""

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from dagster_postgres_connection.catalog._log import get_dagster_logger
from dagster_postgres_connection.catalog.codec import load_summary
from dagster_postgres_connection.catalog.fingerprint import check_unchanged
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.catalog.state import write_snapshot
from dagster_postgres_connection.cli._config import connection_options, resolve_connection
from dagster_postgres_connection.cli._output import debug_option, is_tty


class DatabaseProgress:
    """Receives `read_catalog`'s (database, event) callbacks, from its worker threads."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}
        self._running: list[str] = []
        self.done = 0

    def __call__(self, database: str, event: str) -> None:
        with self._lock:
            if event == "start":
                self._started[database] = time.perf_counter()
                self._running.append(database)
                if not self.live:
                    click.echo(f"{database}: reading")
            else:
                seconds = time.perf_counter() - self._started.get(database, time.perf_counter())
                if database in self._running:
                    self._running.remove(database)
                self.done += 1
                line = f"{database}: {'read' if event == 'done' else 'FAILED'} in {seconds:.2f} s"
                if self.live:
                    mark = click.style("✓", fg="green") if event == "done" else click.style("✗", fg="red")
                    click.echo(f"\r\x1b[K{mark} {line}")
                else:
                    click.echo(line)
            if self.live and self._running:
                click.echo(f"\r\x1b[K⠿ reading {', '.join(self._running)} ({self.done} done)", nl=False)

    def close(self) -> None:
        if self.live:
            click.echo("\r\x1b[K", nl=False)


class _ReaderSkipLines(logging.Filter):
    """The reader logs `Skipping `x`: reason` for each object it skips (for runs and loads); the
    command prints the same list itself after the progress lines, so without this every skipped
    object was reported twice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.funcName == read_catalog.__name__ and record.getMessage().startswith("Skipping `"))


@contextlib.contextmanager
def _reader_skip_lines_left_to_us() -> Iterator[None]:
    logger, quiet = get_dagster_logger(), _ReaderSkipLines()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


@click.command()
@connection_options
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the snapshot here instead of the component's state path.")
@click.option("--full", is_flag=True,
              help="Read the whole catalog even when nothing changed since the snapshot.")
@debug_option
def sync(config: Path | None, output: Path | None, full: bool, **flags: Any) -> None:
    """Read the catalog of CONFIG and write its snapshot.

    With a defs.yaml, the snapshot goes where the component loads it from (the project's
    `.local_defs_state`), as `dg utils refresh-defs-state` would; `dg dev` then shows the assets.
    Without one, pass --output. A failed read leaves the previous snapshot untouched. When the
    catalog has not changed since the snapshot there, it is kept and nothing more is read.
    """
    connection = resolve_connection(config, **flags)
    path = output or connection.state_path()
    if not full:
        summary = load_summary(path) if path.exists() else None
        check = check_unchanged(connection.settings, summary)
        if check.unchanged and summary is not None:
            click.echo(
                f"Connection `{summary.connection_name}` unchanged since its snapshot: "
                f"{len(summary.catalog_fingerprints)} database(s), {summary.relation_count} relations, "
                f"{summary.column_count} columns; checked in {check.seconds:.2f} s, "
                f"{check.statement_count} statements."
            )
            click.echo(f"Snapshot kept: {path}")
            return
    progress = DatabaseProgress(live=is_tty())
    try:
        with _reader_skip_lines_left_to_us():
            snapshot = read_catalog(connection.settings, on_progress=progress)
    finally:
        progress.close()
    write_snapshot(snapshot, path)
    relations = snapshot.relations()
    columns = sum(len(relation.columns) for relation in relations)
    for skipped in snapshot.skipped:
        click.echo(click.style("skipped", fg="yellow") + f" {skipped.label}: {skipped.reason}")
    click.echo(
        f"Synced connection `{snapshot.connection_name}`: {len(snapshot.databases)} database(s), "
        f"{len(relations)} relations, {columns} columns in {snapshot.read_seconds:.2f} s, "
        f"{snapshot.statement_count} statements."
    )
    click.echo(f"Snapshot: {path}")
