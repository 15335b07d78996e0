"""Writing and reading the snapshot file: atomic writes, clear errors on bad files.

The framework removes the old state path before asking us to write, so a crash mid-write
could leave a truncated file. We write a temporary file beside the target (streamed: see
`codec.dump_chunks`), fsync it and `os.replace` it in: the state is either the old snapshot or
the new one, whatever fails midway.
"""

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from dagster_shared.check import CheckError

from dagster_postgres_connection.catalog import codec
from dagster_postgres_connection.catalog._gc import paused_gc
from dagster_postgres_connection.catalog.models import (
    SNAPSHOT_FORMAT_VERSION,
    PostgresCatalogSnapshot,
)
from dagster_postgres_connection.errors import PostgresSnapshotError

REFRESH_HINT = (
    "Re-sync it with `dg utils refresh-defs-state` (or `dagster-postgres-connection sync "
    "<path to defs.yaml>`)."
)


@paused_gc()
def write_snapshot(snapshot: PostgresCatalogSnapshot, path: Path) -> None:
    write_text_atomically(codec.dump_chunks(snapshot), path)


def write_text_atomically(payload: str | Iterable[str], path: Path) -> None:
    """`path` holds either its old content or `payload`, never a truncated mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if isinstance(payload, str):
                handle.write(payload)
            else:
                handle.writelines(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


@paused_gc()
def load_snapshot(path: Path) -> PostgresCatalogSnapshot:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PostgresSnapshotError(f"Cannot read the catalog snapshot `{path}`: {error}. {REFRESH_HINT}") from None
    try:
        document = json.loads(text)
        if not codec.is_format_3(document):
            # The snapshot is a cache of the catalog: an older format is read again, not converted.
            raise PostgresSnapshotError(
                f"The catalog snapshot `{path}` was written in an older format by an earlier version "
                f"of dagster-postgres-connection. {REFRESH_HINT}"
            )
        _refuse_newer(path, int(document["format_version"]))
        snapshot = codec.loads(document)
    except (CheckError, ValueError, TypeError, KeyError, IndexError) as error:
        raise PostgresSnapshotError(
            f"The catalog snapshot `{path}` is corrupt or was written by an incompatible version "
            f"of dagster-postgres-connection ({type(error).__name__}). {REFRESH_HINT}"
        ) from None
    _refuse_newer(path, snapshot.format_version)
    return snapshot


def _refuse_newer(path: Path, format_version: int) -> None:
    if format_version > SNAPSHOT_FORMAT_VERSION:
        raise PostgresSnapshotError(
            f"The catalog snapshot `{path}` has format {format_version}, newer than this "
            f"version of dagster-postgres-connection understands ({SNAPSHOT_FORMAT_VERSION}): upgrade "
            f"the package, or {REFRESH_HINT[0].lower()}{REFRESH_HINT[1:]}"
        )
