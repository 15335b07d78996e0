"""The sync under `defs_state: {management_type: VERSIONED_STATE_STORAGE}`: state where the
deployment keeps it, and a reload of the code location when the relations changed.

Where things go, and why:

- The snapshot: a new version in the instance's `defs_state_storage` (Dagster's
  `DefsStateStorage`, e.g. `UPathDefsStateStorage` on S3/GCS/Azure), written only when the
  catalog changed, exactly as `dg utils refresh-defs-state` writes one. The previous snapshot a
  sync compares with is the storage's latest version, not the one the code server happened to
  load: two syncs between reloads still compare with each other.
- The statistics that decide "changed since the last sync" (row counts, storage hashes): in the
  instance's key-value store (the run storage's cursor values, where `UPathDefsStateStorage`
  keeps its own version pointers). Every process of a deployment reaches it; a no-change sync
  rewrites it without writing a state version.
- The reload: the run asks the code server it was launched from (the run's own code location
  origin, so no new setting) to load the new version (`ReloadCodeWithState`, Dagster's gRPC call
  for exactly this; `dagster code-server start` forwards it to the server it runs). The server
  gets a new server id, and the webserver and the daemon, which poll each `grpc_server`
  location's id every second, reload the location by themselves. When the code server cannot be
  reached (not a `grpc_server` location, an older Dagster, a network policy), the sync logs a
  warning naming the fix and still succeeds: the new version is stored and the next code server
  start loads it.

Private Dagster imports below (`dagster._core...`, `dagster._grpc`) have no public equivalent in
Dagster 1.13: the state storage and the gRPC origin are what `dg utils refresh-defs-state` and the
webserver use themselves.
"""

import tempfile
import zlib
from base64 import b64decode, b64encode
from pathlib import Path
from uuid import uuid4

from dagster import DagsterInstance, DagsterRun, get_dagster_logger
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin
from dagster._core.storage.defs_state.base import DefsStateStorage
from dagster_shared.serdes import deserialize_value, serialize_value
from dagster_shared.serdes.errors import DeserializationError

from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot
from dagster_postgres_connection.catalog.state import load_snapshot, write_snapshot
from dagster_postgres_connection.errors import PostgresSnapshotError
from dagster_postgres_connection.observe.state import PostgresSyncStatistics

# The instance's key-value store holds at most one statistics value per state key.
_STATISTICS_KEY_PREFIX = "dagster-postgres-connection/sync-statistics/"
# Seconds the code server may take to rebuild the location (about 10 s at 10,000 relations).
_RELOAD_TIMEOUT_SECONDS = 300


def state_storage_of(instance: DagsterInstance | None, connection_name: str) -> DefsStateStorage:
    """The instance's `defs_state_storage`, or an error saying how to configure one."""
    storage = instance.defs_state_storage if instance is not None else None
    storage = storage or DefsStateStorage.get()
    if storage is None:
        raise PostgresSnapshotError(
            f"Connection `{connection_name}` keeps its catalog in VERSIONED_STATE_STORAGE, but the "
            f"Dagster instance has no `defs_state_storage`: add one to dagster.yaml (e.g. "
            f"`UPathDefsStateStorage` with an s3:// `base_path`), or set `defs_state.management_type` "
            f"to LOCAL_FILESYSTEM."
        )
    return storage


def load_latest_snapshot(storage: DefsStateStorage, key: str) -> PostgresCatalogSnapshot | None:
    """The latest snapshot version in `storage`, or None when none was written yet."""
    version = storage.get_latest_version(key)
    if version is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state"
        storage.download_state_to_path(key, version, path)
        return load_snapshot(path)


def write_snapshot_version(storage: DefsStateStorage, key: str, snapshot: PostgresCatalogSnapshot) -> str:
    """Uploads `snapshot` as a new version and makes it the latest one; returns the version."""
    version = str(uuid4())  # as StateBackedComponent does
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state"
        write_snapshot(snapshot, path)
        storage.upload_state_from_path(key, version=version, path=path)
    return version


def load_instance_statistics(instance: DagsterInstance, key: str) -> PostgresSyncStatistics | None:
    """The previous sync's statistics from the instance, or None (warned when unusable)."""
    raw = instance.run_storage.get_cursor_values({_STATISTICS_KEY_PREFIX + key}).get(_STATISTICS_KEY_PREFIX + key)
    if raw is None:
        return None
    try:
        return deserialize_value(zlib.decompress(b64decode(raw)).decode(), PostgresSyncStatistics)
    except (DeserializationError, ValueError, TypeError, KeyError, zlib.error) as error:
        get_dagster_logger().warning(
            f"Ignoring the sync statistics kept in the instance for `{key}` ({type(error).__name__}): "
            f"this sync counts again and reports no change; they are rewritten at its end."
        )
        return None


def write_instance_statistics(instance: DagsterInstance, key: str, statistics: PostgresSyncStatistics) -> None:
    # Compressed: ~300 bytes a relation as JSON, ~10x smaller compressed (one row of the kvs table).
    payload = b64encode(zlib.compress(serialize_value(statistics).encode(), 6)).decode()
    instance.run_storage.set_cursor_values({_STATISTICS_KEY_PREFIX + key: payload})


def reload_code_location(run: DagsterRun | None, storage: DefsStateStorage, connection_name: str) -> str:
    """Asks the run's code server to load the latest state versions; says what happened.

    Never raises: the new version is stored whatever happens here.
    """
    log = get_dagster_logger()
    origin = run.remote_job_origin.repository_origin.code_location_origin if run and run.remote_job_origin else None
    if not isinstance(origin, GrpcServerCodeLocationOrigin):
        kind = type(origin).__name__ if origin is not None else "no code location origin (launched in-process)"
        message = (
            f"New relations of connection `{connection_name}` show after the next code location "
            f"reload: this run came from {kind}, not a `grpc_server` code location it can ask to "
            f"reload. Serve the code location with `dagster code-server start` and a `grpc_server` "
            f"entry in workspace.yaml for automatic reloads, or reload it in the UI."
        )
        log.warning(message)
        return message
    # The latest version of every key, as a code server start would load them: a pin of only
    # this key would unload the location's other state-backed components.
    info = storage.get_latest_defs_state_info()
    server_id = ""
    try:
        reply = origin.create_client().reload_code_with_state(
            serialized_defs_state_info=serialize_value(info), timeout=_RELOAD_TIMEOUT_SECONDS
        )
        error, server_id = reply.serialized_error, reply.serialized_server_id
    except Exception as exc:  # unreachable server, or one without ReloadCodeWithState
        error = f"{type(exc).__name__}: {exc}"
    if error:
        message = (
            f"Could not ask the code server of location `{origin.location_name}` "
            f"({origin.host}:{origin.port or origin.socket}) to load the new catalog of connection "
            f"`{connection_name}` ({str(error)[:300]}). The new state version is stored: restart the "
            f"code server or reload the location in the UI to show it, and check that run workers "
            f"can reach the code server (Dagster >= 1.13 with `ReloadCodeWithState`)."
        )
        log.warning(message)
        return message
    message = f"code location `{origin.location_name}` reloaded (server id {server_id})"
    log.info(f"Asked the code server to load the new catalog of `{connection_name}`: {message}.")
    return message
